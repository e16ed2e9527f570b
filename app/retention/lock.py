"""The lock a real retention run holds from its start to its end: one run at a time, and a run whose process
dies (SIGKILL, a crash, the machine) lets go of it at once, whatever state its row was left in.

PostgreSQL: a session-level advisory lock (core.sql.locks) on a connection of its own; the server releases
it when that connection ends, and the kernel ends it when the process dies. SQLite (one machine, the
documented deployment): an exclusive `flock` on a file beside the database, which the kernel releases when
the process dies. An in-memory database (tests) has a lock per process."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.sql.locks import advisory_unlock, try_advisory_lock
from app.retention import repository

# pg_advisory_lock's key: fixed, so that every process of the service contends for the same one.
RETENTION_LOCK_KEY = 0x5753_5052_4956_5254  # "WSPRIVRT"

_in_memory = threading.Lock()


class LockLost(Exception):
    """The run's lock connection broke: another run may have started, so this one stops."""


class RunLock:
    """Held: release it once (a second release does nothing)."""

    def __init__(
        self, *, connection: AsyncConnection | None = None, fd: int | None = None, memory: bool = False
    ) -> None:
        self._connection, self._fd, self._memory = connection, fd, memory
        self._held = True

    @classmethod
    async def take(cls, engine: AsyncEngine) -> RunLock | None:
        """The lock, or None (at once) if another run holds it."""
        if engine.dialect.name == "postgresql":
            connection = await engine.connect()
            try:
                if await try_advisory_lock(connection, RETENTION_LOCK_KEY):
                    return cls(connection=connection)
            except BaseException:
                await connection.invalidate()
                await connection.close()
                raise
            await connection.close()
            return None
        path = lock_file(engine)
        if path is None:
            return cls(memory=True) if _in_memory.acquire(blocking=False) else None
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd=fd)

    async def check(self) -> None:
        """Raise LockLost if the lock may have gone (PostgreSQL: its connection no longer answers)."""
        if self._connection is None:
            return
        try:
            await repository.ping(self._connection)
        except Exception as exc:
            raise LockLost(f"the retention run's lock connection broke: {type(exc).__name__}") from exc

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._connection is not None:
            try:
                await advisory_unlock(self._connection, RETENTION_LOCK_KEY)
                await self._connection.close()
            except Exception:  # noqa: BLE001 - a broken connection has let go of the lock already
                with contextlib.suppress(Exception):
                    await self._connection.invalidate()
        elif self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        elif self._memory:
            _in_memory.release()


def lock_file(engine: AsyncEngine) -> Path | None:
    """The lock file of a SQLite database: beside it, named after it; None for an in-memory one."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    path = Path(database)
    return path.with_name(path.name + ".retention-lock")
