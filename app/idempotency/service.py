"""Idempotency-Key: the same key and body replay the first result; another body with the key is refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import insert_or_ignore
from app.core.errors import Unprocessable
from app.core.time import utc_now
from app.idempotency.models import IdempotencyRecord


class KeyReused(Unprocessable):
    title = "Idempotency-Key reused"


async def claim(session: AsyncSession, *, caller: str, key: str, fingerprint: str,
                ttl: timedelta) -> IdempotencyRecord | None:
    """Claim the key for this request (None: go ahead and create), or return the earlier record to replay.

    On PostgreSQL a concurrent request with the same key waits on the unique key until the first one
    commits (then replays it) or rolls back (then claims it): exactly one of them creates."""
    now = utc_now()
    values = {"caller": caller, "key": key, "fingerprint": fingerprint, "created_at": now}
    if await insert_or_ignore(session, IdempotencyRecord.__table__, values):
        return None
    existing = await session.get(IdempotencyRecord, (caller, key), populate_existing=True)
    if existing is None or existing.created_at < now - ttl:
        # Expired (or gone between the two statements): the key starts over.
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.caller == caller,
                                                              IdempotencyRecord.key == key))
        await insert_or_ignore(session, IdempotencyRecord.__table__, values)
        return None
    if existing.fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was used with a different request",
                        loc=["header", "Idempotency-Key"])
    return existing


async def complete(session: AsyncSession, *, caller: str, key: str, resource_key: str) -> None:
    record = await session.get(IdempotencyRecord, (caller, key))
    assert record is not None
    record.resource_key = resource_key
    await session.flush()



async def purge_expired(session: AsyncSession, *, ttl: timedelta) -> int:
    """Delete keys past their window (a retry after it is a new request anyway). Returns how many."""
    result = await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utc_now() - ttl))
    return result.rowcount
