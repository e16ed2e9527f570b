"""Legal holds: the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import sql
from app.core.sql import Insert
from app.holds.models import LegalHold

_HOLDS = sql.table_of(LegalHold)
_INSERT = Insert(_HOLDS, "hold")


def _active(now: datetime) -> Any:
    return col(LegalHold.lifted_at).is_(None) & or_(
        col(LegalHold.ends_at).is_(None), col(LegalHold.ends_at) > now
    )


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT(values))


async def get(session: AsyncSession, hold_id: uuid.UUID, *, lock: bool = False) -> LegalHold | None:
    return await session.get(LegalHold, hold_id, populate_existing=True, with_for_update=lock or None)


async def lift(session: AsyncSession, hold_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_HOLDS).where(_HOLDS.c.id == hold_id).values(**changes))


async def list_holds(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID | None,
    active: bool | None,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[LegalHold], str | None]:
    statement = sql.where_given(select(LegalHold), (LegalHold.subject_id, subject_id))
    if active is not None:
        statement = statement.where(_active(now) if active else ~_active(now))
    return await sql.paginate(
        session,
        statement,
        order=(LegalHold.placed_at, LegalHold.id),
        limit=limit,
        cursor=cursor,
    )


async def active_holds(
    session: AsyncSession, subject_ids: Iterable[uuid.UUID], now: datetime
) -> Sequence[LegalHold]:
    """The active holds of these subjects, oldest first."""
    rows = await session.execute(
        select(LegalHold)
        .where(col(LegalHold.subject_id).in_(list(subject_ids)), _active(now))
        .order_by(col(LegalHold.placed_at))
    )
    return rows.scalars().all()
