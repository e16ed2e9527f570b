"""Notice deliveries and the notices owed: the SQL, and the read models that join the subjects', consent's and
the register's tables (who is owed a notice, whom a changed section concerns). They read those tables, never
write them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.consent.models import ConsentState
from app.core import sql
from app.core.sql import Insert, Write
from app.notices.models import NoticeDelivery, NoticeDue
from app.subjects.models import PersonalDataItem, Subject

_DELIVERIES, _DUE = sql.table_of(NoticeDelivery), sql.table_of(NoticeDue)
_SUBJECTS, _STATES, _ITEMS = sql.table_of(Subject), sql.table_of(ConsentState), sql.table_of(PersonalDataItem)

_INSERT_DELIVERY = Insert(_DELIVERIES, "delivery")
# A subject already owed a notice keeps its reason and due date; the version to give becomes the newest.
_INSERT_DUE = Insert(
    _DUE,
    "due",
    on_conflict=lambda insert: insert.on_conflict_do_update(
        index_elements=[_DUE.c.subject_id], set_={"version": insert.excluded.version}
    ),
)


def delivery(values: dict[str, Any]) -> Write:
    return _INSERT_DELIVERY(values)


def due(values: dict[str, Any]) -> Write:
    return _INSERT_DUE(values)


async def deliveries_of(session: AsyncSession, subject_id: uuid.UUID) -> Sequence[NoticeDelivery]:
    statement = (
        select(NoticeDelivery)
        .where(_DELIVERIES.c.subject_id == subject_id)
        .order_by(_DELIVERIES.c.delivered_at.desc(), _DELIVERIES.c.id.desc())
    )
    return (await sql.execute(session, statement)).scalars().all()


async def get_delivery(session: AsyncSession, delivery_id: uuid.UUID) -> NoticeDelivery | None:
    return await session.get(NoticeDelivery, delivery_id, populate_existing=True)


async def due_of(session: AsyncSession, subject_id: uuid.UUID) -> NoticeDue | None:
    return await session.get(NoticeDue, subject_id, populate_existing=True)


async def clear_due(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> int:
    if not subject_ids:
        return 0
    dialect = sql.dialect_of(session)
    return await sql.modify(
        session, delete(_DUE).where(sql.among(dialect, _DUE.c.subject_id, "ids", list(subject_ids)))
    )


# Owed notices of subjects still there: an erased subject is owed nothing (its row goes at the next mailing).
_OWED = (
    select(NoticeDue)
    .join(_SUBJECTS, _SUBJECTS.c.id == _DUE.c.subject_id)
    .where(_SUBJECTS.c.status != "erased")
)


async def due_page(
    session: AsyncSession,
    *,
    before: datetime | None,
    subject_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[NoticeDue], str | None]:
    """Owed notices, soonest due first (keyset by due date and subject); `before`: only those due by then."""
    statement = _OWED
    if subject_id is not None:
        statement = statement.where(_DUE.c.subject_id == subject_id)
    if before is not None:
        statement = statement.where(_DUE.c.due_at <= before)
    return await sql.paginate(
        session,
        statement,
        order=(_DUE.c.due_at, _DUE.c.subject_id),
        limit=limit,
        cursor=cursor,
        oldest_first=True,
    )


async def count_due(session: AsyncSession) -> int:
    return int((await sql.execute(session, select(func.count()).select_from(_DUE))).scalar_one())


async def mailing_batch(session: AsyncSession, limit: int) -> list[dict[str, Any]]:
    """The next owed notices to mail, soonest due first, each with its subject's status and address and the
    language it was last given a notice in. On PostgreSQL the rows are locked, skipping those another
    mailing holds, so that mailings run side by side never send one notice twice."""
    last_language = (
        select(_DELIVERIES.c.language)
        .where(_DELIVERIES.c.subject_id == _DUE.c.subject_id)
        .order_by(_DELIVERIES.c.delivered_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    statement = (
        select(
            _DUE.c.subject_id,
            _DUE.c.reason,
            _DUE.c.version,
            _SUBJECTS.c.status,
            _SUBJECTS.c.email,
            last_language.label("language"),
        )
        .join(_SUBJECTS, _SUBJECTS.c.id == _DUE.c.subject_id)
        .order_by(_DUE.c.due_at, _DUE.c.subject_id)
        .limit(limit)
    )
    if sql.dialect_of(session) == "postgresql":
        statement = statement.with_for_update(of=_DUE, skip_locked=True)
    return [dict(row._mapping) for row in await sql.execute(session, statement)]


async def owe_changed_notice(
    session: AsyncSession, *, version: str, due_at: datetime, now: datetime, purposes: Sequence[str] | None
) -> int:
    """Every subject a changed notice concerns is owed it, in one INSERT ... SELECT (however many subjects):
    with `purposes`, those with a granted consent to one of them or data held for one of them; without,
    everyone still registered with an address. How many are owed it."""
    dialect = sql.dialect_of(session)
    concerned = and_(_SUBJECTS.c.status != "erased", _SUBJECTS.c.email.is_not(None))
    if purposes is not None:
        concerned = and_(
            concerned,
            or_(
                exists().where(
                    _STATES.c.subject_id == _SUBJECTS.c.id,
                    _STATES.c.status == "granted",
                    sql.among(dialect, _STATES.c.purpose, "consented", list(purposes)),
                ),
                exists().where(
                    _ITEMS.c.subject_id == _SUBJECTS.c.id,
                    sql.among(dialect, _ITEMS.c.purpose, "held", list(purposes)),
                ),
            ),
        )
    rows = select(
        _SUBJECTS.c.id,
        literal("notice_changed"),
        literal(version),
        literal(due_at, type_=_DUE.c.due_at.type),
        literal(now, type_=_DUE.c.created_at.type),
    ).where(concerned)
    insert = sql.upsert_for(dialect, _DUE).from_select(
        ["subject_id", "reason", "version", "due_at", "created_at"], rows
    )
    insert = insert.on_conflict_do_update(
        index_elements=[_DUE.c.subject_id], set_={"version": insert.excluded.version}
    )
    return await sql.modify(session, insert)
