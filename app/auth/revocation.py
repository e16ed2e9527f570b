"""Each worker's copy of the revoked API clients: a revoked client's tokens are refused at once, however long
they would still run and although the token verifier remembers them (core.security caches verified tokens).

The copy is kept the way the catalog's is (catalog.cache): the worker that revokes drops its copy when the
revocation commits (core.db.on_commit), and on PostgreSQL every worker is told by NOTIFY on
`api_client_revoked` and drops its copy at once. While a worker's listener is not connected (starting, or
the database away) it cannot trust a copy, and reads the set on every use of a client's token. On SQLite,
whose deployment is one process, there is no listener: the revoking process drops its copy on commit, and
every copy is read again after `MAX_AGE` at the latest (several `serve --workers` on one SQLite file, or a
copy some missed change left behind, are stale no longer than that).

Only tokens that name a client (`client_id`, which `POST /v1/auth/token` puts in every token it issues) are
checked: operators' tokens (`privacy token`) and an identity provider's are not ours to revoke."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import repository
from app.core.db import listen, on_commit

MAX_AGE = 30.0  # seconds a copy is trusted without a listener to tell of changes (SQLite)


class RevokedClients:
    def __init__(self, *, shared_database: bool) -> None:
        # shared_database: other processes may revoke (PostgreSQL): trust a copy only while listening.
        self._shared = shared_database
        self._ids: frozenset[str] | None = None
        self._loaded_at = 0.0
        self._generation = 0  # moved on by every invalidation: a read that overlapped one is not kept
        self.listening = False

    async def is_revoked(self, sessions: async_sessionmaker[AsyncSession], client_id: str) -> bool:
        ids = self._ids
        if ids is None or not self._trusted():
            ids = await self._read(sessions)
        return client_id in ids

    def _trusted(self) -> bool:
        if self._shared:
            return self.listening
        return time.monotonic() - self._loaded_at < MAX_AGE

    async def _read(self, sessions: async_sessionmaker[AsyncSession]) -> frozenset[str]:
        generation = self._generation
        async with sessions() as session:
            ids = await repository.revoked_client_ids(session)
        if generation == self._generation:  # no revocation was announced while reading
            self._ids, self._loaded_at = ids, time.monotonic()
        return ids

    async def announce(self, session: AsyncSession) -> None:
        """The revoked set changes in the session's transaction other than by a client's own revocation (its
        processor ended): this worker drops its copy on commit, the others when notified (PostgreSQL)."""
        on_commit(session, self.invalidate)
        await repository.notify_revoked(session, "")

    def invalidate(self) -> None:
        self._generation += 1
        self._ids = None

    def listen(self, database_url: str) -> asyncio.Task[None]:
        """Drop the copy on every revocation notified (PostgreSQL); runs until cancelled."""

        def connected(up: bool) -> None:
            self.listening = up
            self.invalidate()  # revocations may have been missed while not listening

        return asyncio.create_task(
            listen(database_url, repository.REVOKED, lambda _payload: self.invalidate(), connected)
        )
