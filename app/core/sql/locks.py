"""PostgreSQL's session-level advisory locks, on a connection of the caller's (core.migrate holds one around
migrations, so that replicas starting together take turns)."""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)").bindparams(bindparam("key"))
_LOCK = text("SELECT pg_advisory_lock(:key)").bindparams(bindparam("key"))
_UNLOCK = text("SELECT pg_advisory_unlock(:key)").bindparams(bindparam("key"))


async def try_advisory_lock(connection: AsyncConnection, key: int) -> bool:
    """Take the lock if it is free; False (at once) if another session holds it."""
    return bool((await connection.execute(_TRY_LOCK, {"key": key})).scalar_one())


async def advisory_lock(connection: AsyncConnection, key: int) -> None:
    """Take the lock, waiting for as long as another session holds it."""
    await connection.execute(_LOCK, {"key": key})


async def advisory_unlock(connection: AsyncConnection, key: int) -> bool:
    """Release the lock; False if this session did not hold it."""
    return bool((await connection.execute(_UNLOCK, {"key": key})).scalar_one())
