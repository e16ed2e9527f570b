"""The Idempotency-Key header on creating POSTs, as a dependency the route hands its creation to."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import transactional
from app.core.security import Principal
from app.idempotency import service

R = TypeVar("R")
Out = TypeVar("Out")

KeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Retry-safe creation: the same key and body return the first result; "
                "the same key with another body is refused (422). Keys are kept for at least 24 hours.")]


class Idempotency:
    """The route's Idempotency-Key. The route hands it its session and caller (the key is scoped per caller)
    rather than this dependency declaring them again: FastAPI solves a dependency's sub-dependencies on every
    request even when their values are cached, which cost a consent write 4 % of its instructions (callgrind)."""

    def __init__(self, request: Request, response: Response, key: str | None) -> None:
        self.request, self.response, self.key = request, response, key

    async def run(self, session: AsyncSession, caller: Principal, *, create: Callable[[], Awaitable[R]],
                  key_of: Callable[[R], Any], load: Callable[[str], Awaitable[R]], render: Callable[[R], Out]) -> Out:
        """Create once per key: `create` makes the resource, `key_of` names it, `load` finds it again."""
        if self.key is None:
            return render(await create())
        # The key's claim and the creation commit together, or not at all: on an atomic session too.
        await transactional(session)
        settings = self.request.app.state.settings
        record = await service.claim(session, caller=caller.key, key=self.key, fingerprint=await self._fingerprint(),
                                     ttl=timedelta(hours=settings.idempotency_ttl_hours))
        if record is not None and record.resource_key is not None:
            self.response.headers["Idempotent-Replayed"] = "true"
            return render(await load(record.resource_key))
        resource = await create()
        await service.complete(session, caller=caller.key, key=self.key, resource_key=str(key_of(resource)))
        return render(resource)

    async def _fingerprint(self) -> str:
        body = await self.request.body()
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
        material = f"{self.request.method} {self.request.url.path}\n{canonical}"
        return hashlib.sha256(material.encode()).hexdigest()


# Dependencies are async functions: FastAPI runs a sync one (a class too) in a worker thread.
async def get_idempotency(request: Request, response: Response, key: KeyHeader = None) -> Idempotency:
    return Idempotency(request, response, key)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
