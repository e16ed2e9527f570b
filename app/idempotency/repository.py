"""The idempotency keys' SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.core.sql import Insert
from app.idempotency.models import IdempotencyRecord

_KEYS = sql.table_of(IdempotencyRecord)
_CLAIM = Insert(
    _KEYS, "key", on_conflict=lambda insert: insert.on_conflict_do_nothing().returning(_KEYS.c.key)
)
_THE_KEY = (_KEYS.c.caller == bindparam("caller")) & (_KEYS.c.key == bindparam("key"))
_FIND = select(_KEYS.c.fingerprint, _KEYS.c.resource_key, _KEYS.c.created_at).where(_THE_KEY)
_FORGET = delete(_KEYS).where(_THE_KEY)
_COMPLETE = update(_KEYS).where(_THE_KEY).values(resource_key=bindparam("resource_key"))


async def claim(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert the key; False when the caller already holds it (on PostgreSQL a concurrent claim of the same
    key waits here until the first one commits or rolls back)."""
    return bool(await sql.write(session, _CLAIM(values)))


async def find(session: AsyncSession, caller: str, key: str) -> dict[str, Any] | None:
    rows = await sql.run(session, _FIND, {"caller": caller, "key": key})
    return rows[0] if rows else None


async def forget(session: AsyncSession, caller: str, key: str) -> None:
    await sql.run(session, _FORGET, {"caller": caller, "key": key})


async def complete(session: AsyncSession, caller: str, key: str, resource_key: str) -> None:
    await sql.run(session, _COMPLETE, {"caller": caller, "key": key, "resource_key": resource_key})


async def purge_older_than(session: AsyncSession, cutoff: datetime) -> int:
    return await sql.modify(session, delete(_KEYS).where(_KEYS.c.created_at < cutoff))
