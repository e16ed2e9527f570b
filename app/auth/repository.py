"""API clients, login codes and login attempts: the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.models import ApiClient, LoginAttempt, LoginCode
from app.core import sql
from app.core.sql import Insert
from app.core.sql.locks import lock_key, transaction_lock
from app.processors.models import Processor

_CLIENTS, _CODES, _ATTEMPTS = sql.table_of(ApiClient), sql.table_of(LoginCode), sql.table_of(LoginAttempt)
_PROCESSORS = sql.table_of(Processor)
_INSERT_CLIENT = Insert(_CLIENTS, "client")
_INSERT_CODE = Insert(_CODES, "code")
_INSERT_ATTEMPT = Insert(_ATTEMPTS, "attempt")
REVOKED = "api_client_revoked"  # the PostgreSQL notification channel of client revocations
# Revoked: by its own revocation, or because its processor has ended (a read model over processor.ended_at).
_REVOKED_IDS = select(_CLIENTS.c.id).where(
    or_(
        _CLIENTS.c.revoked_at.is_not(None),
        _CLIENTS.c.processor_id.in_(select(_PROCESSORS.c.id).where(_PROCESSORS.c.ended_at.is_not(None))),
    )
)
_NOTIFY_REVOKED = select(func.pg_notify(REVOKED, bindparam("client_id")).label("sent"))
_ATTEMPTS_BY = {
    column: select(func.count().label("n")).where(
        _ATTEMPTS.c.kind == bindparam("kind"),
        column == bindparam("hash"),
        _ATTEMPTS.c.at > bindparam("since"),
    )
    for column in (_ATTEMPTS.c.email_hash, _ATTEMPTS.c.ip_hash)
}


async def insert_client(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_CLIENT(values))


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> ApiClient | None:
    return await session.get(ApiClient, client_id, populate_existing=True)


async def list_clients(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[ApiClient], str | None]:
    return await sql.paginate(
        session,
        select(ApiClient),
        order=(ApiClient.created_at, ApiClient.id),
        limit=limit,
        cursor=cursor,
    )


async def revoke_client(session: AsyncSession, client_id: uuid.UUID, at: datetime) -> None:
    """Mark the client revoked; on PostgreSQL every worker is also told when the transaction commits (NOTIFY),
    and drops its copy of the revoked set (auth.revocation)."""
    await sql.modify(session, update(_CLIENTS).where(_CLIENTS.c.id == client_id).values(revoked_at=at))
    if sql.dialect_of(session) == "postgresql":
        await sql.run(session, _NOTIFY_REVOKED, {"client_id": str(client_id)})


async def notify_revoked(session: AsyncSession, payload: str) -> None:
    """Tell every worker, when the transaction commits, that the revoked set changed (PostgreSQL)."""
    if sql.dialect_of(session) == "postgresql":
        await sql.run(session, _NOTIFY_REVOKED, {"client_id": payload})


async def revoked_client_ids(session: AsyncSession) -> frozenset[str]:
    """Every revoked client's id, canonical (a few rows: clients are few, and revoked ones fewer)."""
    return frozenset(str(row["id"]) for row in await sql.run(session, _REVOKED_IDS))


# --- the privacy center's login
# ------------------------------------------------------------------------------


async def lock_login(session: AsyncSession, *, email_hash: str, ip_hash: str) -> None:
    """Hold the address's and then the IP's login lock until the transaction ends: requests and checks for
    one address (or from one IP) take turns, so that each counts the attempts of those before it. Always in
    this order, and nothing else takes these locks, so two transactions never wait for each other."""
    await transaction_lock(session, lock_key("login-address", email_hash), lock_key("login-ip", ip_hash))


async def attempts_since(
    session: AsyncSession, kind: str, *, email_hash: str, ip_hash: str, since: datetime
) -> tuple[int, int]:
    """How many attempts of this kind there were since then, by this address and by this IP."""
    by_email = await sql.run(
        session, _ATTEMPTS_BY[_ATTEMPTS.c.email_hash], {"kind": kind, "hash": email_hash, "since": since}
    )
    by_ip = await sql.run(
        session, _ATTEMPTS_BY[_ATTEMPTS.c.ip_hash], {"kind": kind, "hash": ip_hash, "since": since}
    )
    return by_email[0]["n"], by_ip[0]["n"]


async def add_attempt(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_ATTEMPT(values))


async def retire_codes(session: AsyncSession, email_hash: str, at: datetime) -> None:
    """Earlier codes for this address stop working."""
    await sql.modify(
        session,
        update(_CODES)
        .where(_CODES.c.email_hash == email_hash, _CODES.c.used_at.is_(None))
        .values(used_at=at),
    )


async def add_code(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_CODE(values))


async def live_code(session: AsyncSession, email_hash: str, purpose: str, now: datetime) -> LoginCode | None:
    """The newest usable code of this purpose for this address, locked until the transaction ends."""
    statement = (
        select(LoginCode)
        .where(
            col(LoginCode.email_hash) == email_hash,
            col(LoginCode.purpose) == purpose,
            col(LoginCode.used_at).is_(None),
            col(LoginCode.expires_at) > now,
        )
        .order_by(col(LoginCode.created_at).desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def update_code(session: AsyncSession, code_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_CODES).where(_CODES.c.id == code_id).values(**changes))


async def purge(
    session: AsyncSession, *, attempts_before: datetime, codes_expired_before: datetime
) -> dict[str, int]:
    return {
        "login_attempts": await sql.modify(
            session, delete(_ATTEMPTS).where(_ATTEMPTS.c.at < attempts_before)
        ),
        "login_codes": await sql.modify(
            session, delete(_CODES).where(_CODES.c.expires_at < codes_expired_before)
        ),
    }


async def forget(session: AsyncSession, email_hash: str) -> None:
    await sql.modify(session, delete(_CODES).where(_CODES.c.email_hash == email_hash))
    await sql.modify(session, delete(_ATTEMPTS).where(_ATTEMPTS.c.email_hash == email_hash))
