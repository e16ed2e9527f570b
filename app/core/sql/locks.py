"""PostgreSQL's advisory locks. Session-level, on a connection of the caller's (core.migrate holds one around
migrations, so that replicas starting together take turns); transaction-level, in a session's transaction
(auth's login codes take one per address, so that racing requests cannot both pass a limit)."""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.sql.dialects import dialect_of

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


# Transaction-level: held until the caller's transaction ends (commit or rollback), released by PostgreSQL
# even if the process dies. Only inside a transaction (core.db.transaction): in autocommit it ends at once.
_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(bindparam("key"))


def lock_key(namespace: str, value: str) -> int:
    """A signed 64-bit advisory-lock key for `value` within `namespace` (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(f"{namespace}\0{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def transaction_lock(session: AsyncSession, *keys: int) -> None:
    """Hold these locks until the session's transaction ends, taken in the order given (callers keep one
    order, so that two transactions never wait for each other). On SQLite nothing: its transactions already
    hold the database's write lock from their first statement (BEGIN IMMEDIATE)."""
    if dialect_of(session) != "postgresql":
        return
    for key in keys:
        await session.execute(_XACT_LOCK, {"key": key})
