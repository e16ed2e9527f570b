"""Idempotency-Key: the same key and body replay the first result; another body with the key is refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Unprocessable
from app.core.time import utc_now
from app.idempotency import repository


class KeyReused(Unprocessable):
    title = "Idempotency-Key reused"


async def claim(
    session: AsyncSession, *, caller: str, key: str, fingerprint: str, ttl: timedelta
) -> str | None:
    """Claim the key for this request (None: go ahead and create), or the resource key of the earlier request
    to replay. In the request's transaction: on PostgreSQL a concurrent request with the same key waits on
    the unique key until the first one commits (then replays it) or rolls back (then claims it)."""
    now = utc_now()
    values = {
        "caller": caller,
        "key": key,
        "fingerprint": fingerprint,
        "resource_key": None,
        "created_at": now,
    }
    if await repository.claim(session, values):
        return None
    existing = await repository.find(session, caller, key)
    if existing is None or existing["created_at"] < now - ttl or existing["resource_key"] is None:
        # Expired, or gone between the two statements: the key starts over.
        await repository.forget(session, caller, key)
        await repository.claim(session, values)
        return None
    if existing["fingerprint"] != fingerprint:
        raise KeyReused(
            "This Idempotency-Key was used with a different request", loc=["header", "Idempotency-Key"]
        )
    return str(existing["resource_key"])


async def complete(session: AsyncSession, *, caller: str, key: str, resource_key: str) -> None:
    await repository.complete(session, caller, key, resource_key)


async def purge_expired(session: AsyncSession, *, ttl: timedelta) -> int:
    """Delete keys past their window (a retry after it is a new request anyway). Returns how many."""
    return await repository.purge_older_than(session, utc_now() - ttl)
