"""The privacy center's sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core import sql
from app.privacy_center.models import CenterSession

_SESSIONS = CenterSession.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass, undeclared


async def find(
    session: AsyncSession, token_hash: str, *, now: datetime, idle_since: datetime
) -> CenterSession | None:
    """The live session with this token: not past its end, and used since `idle_since`."""
    statement = select(CenterSession).where(
        col(CenterSession.token_hash) == token_hash,
        col(CenterSession.expires_at) > now,
        col(CenterSession.last_seen_at) > idle_since,
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def add(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.modify(session, _SESSIONS.insert().values(**values))


async def touch(session: AsyncSession, session_id: uuid.UUID, at: datetime) -> None:
    await sql.modify(session, update(_SESSIONS).where(_SESSIONS.c.id == session_id).values(last_seen_at=at))


async def end(session: AsyncSession, token_hash: str) -> None:
    await sql.modify(session, delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash))


async def purge(session: AsyncSession, *, now: datetime, idle_since: datetime) -> int:
    return await sql.modify(
        session,
        delete(_SESSIONS).where(or_(_SESSIONS.c.expires_at <= now, _SESSIONS.c.last_seen_at <= idle_since)),
    )
