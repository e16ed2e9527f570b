"""The Idempotency-Key header on creating POSTs, as a dependency the route hands its creation to."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import AnyCaller
from app.core.db import AtomicSessionDep, SessionDep, transactional
from app.core.security import Principal
from app.idempotency import service

R = TypeVar("R")
Out = TypeVar("Out")

KeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Retry-safe creation: the same key and body return the first result; "
                "the same key with another body is refused (422). Keys are kept for at least 24 hours.")]


class Idempotency:
    def __init__(self, session: AsyncSession, caller: Principal, request: Request, response: Response,
                 key: str | None) -> None:
        self.session, self.caller, self.request, self.response, self.key = session, caller, request, response, key

    async def run(self, *, create: Callable[[], Awaitable[R]], key_of: Callable[[R], Any],
                  load: Callable[[str], Awaitable[R]], render: Callable[[R], Out]) -> Out:
        """Create once per key: `create` makes the resource, `key_of` names it, `load` finds it again."""
        if self.key is None:
            return render(await create())
        settings = self.request.app.state.settings
        record = await service.claim(self.session, caller=self.caller.key, key=self.key,
                                     fingerprint=await self._fingerprint(),
                                     ttl=timedelta(hours=settings.idempotency_ttl_hours))
        if record is not None and record.resource_key is not None:
            self.response.headers["Idempotent-Replayed"] = "true"
            return render(await load(record.resource_key))
        resource = await create()
        await service.complete(self.session, caller=self.caller.key, key=self.key, resource_key=str(key_of(resource)))
        return render(resource)

    async def _fingerprint(self) -> str:
        body = await self.request.body()
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
        material = f"{self.request.method} {self.request.url.path}\n{canonical}"
        return hashlib.sha256(material.encode()).hexdigest()


# Dependencies are async functions: FastAPI runs a sync one (a class too) in a worker thread.
async def get_idempotency(session: SessionDep, caller: AnyCaller, request: Request, response: Response,
                          key: KeyHeader = None) -> Idempotency:
    return Idempotency(session, caller, request, response, key)


async def get_atomic_idempotency(session: AtomicSessionDep, caller: AnyCaller, request: Request,
                                 response: Response, key: KeyHeader = None) -> Idempotency:
    """For routes on an atomic session: with a key, the session becomes one transaction, so that the key's
    claim and the creation commit together (or not at all)."""
    if key is not None:
        await transactional(session)
    return Idempotency(session, caller, request, response, key)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
AtomicIdempotencyDep = Annotated[Idempotency, Depends(get_atomic_idempotency)]
