"""The breach register: the SQL, and the read models that find the subjects a breach affected.

Read models over other domains' tables (they are read, never written here):
- `subjects_disclosed`: the disclosure log (`disclosure`): whose data a recipient received in a window.
- `subjects_in_audit`: the audit trail (`audit_event`): whom events of an action or an actor concerned in a
  window (found through the `at` index; events about no subject are left out).
- `addresses`: the subjects' addresses and status (`subject`), and the language each last used on the
  website (`visitor`, the device a subject signed in with), for the notification mails."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditEvent
from app.breaches.models import Breach, BreachQuery, BreachSubject
from app.breaches.schemas import OPEN_FOR_IMY, SubjectNotification
from app.core import sql
from app.core.sql import Insert
from app.disclosures.models import Disclosure
from app.subjects.models import Subject
from app.visitors.models import Visitor

_BREACHES, _QUERIES, _LINKS = sql.table_of(Breach), sql.table_of(BreachQuery), sql.table_of(BreachSubject)
_INSERT_BREACH = Insert(_BREACHES, "breach")
_INSERT_QUERY = Insert(_QUERIES, "breach_query")
# Rows are written in chunks of this many (a bound on each statement's parameters).
CHUNK = 1000


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_BREACH(values))


async def get(session: AsyncSession, breach_id: uuid.UUID, *, lock: bool = False) -> Breach | None:
    return await session.get(Breach, breach_id, populate_existing=True, with_for_update=lock or None)


async def update_breach(session: AsyncSession, breach_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_BREACHES).where(_BREACHES.c.id == breach_id).values(**changes))


def _overdue(now: datetime) -> Any:
    return col(Breach.status).in_(OPEN_FOR_IMY) & (col(Breach.due_at) < now)


async def list_breaches(
    session: AsyncSession,
    *,
    status: str | None,
    processor_id: uuid.UUID | None,
    overdue: bool | None,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Breach], str | None]:
    statement = sql.where_given(select(Breach), (Breach.status, status), (Breach.processor_id, processor_id))
    if overdue is not None:
        statement = statement.where(_overdue(now) if overdue else ~_overdue(now))
    return await sql.paginate(
        session, statement, order=(Breach.created_at, Breach.id), limit=limit, cursor=cursor
    )


async def counts(session: AsyncSession, breach_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Per breach: its linked subjects, and how many of them are pending, sent and skipped."""
    found: dict[uuid.UUID, dict[str, int]] = {
        b: {"affected": 0, **{n.value: 0 for n in SubjectNotification}} for b in breach_ids
    }
    if not breach_ids:
        return found
    rows = await session.execute(
        select(_LINKS.c.breach_id, _LINKS.c.notification, func.count())
        .where(_LINKS.c.breach_id.in_(list(breach_ids)))
        .group_by(_LINKS.c.breach_id, _LINKS.c.notification)
    )
    for breach_id, notification, number in rows:
        found[breach_id]["affected"] += number
        if notification is not None:
            found[breach_id][notification] += number
    return found


async def register_summary(session: AsyncSession) -> dict[str, int]:
    """How many breaches are in each status (for the Art. 30 record)."""
    rows = await session.execute(select(_BREACHES.c.status, func.count()).group_by(_BREACHES.c.status))
    return {str(status): int(number) for status, number in rows}


# --- finding the subjects affected


async def subjects_disclosed(
    session: AsyncSession,
    *,
    recipient_id: uuid.UUID,
    since: datetime,
    until: datetime,
    purpose: str | None,
    categories: list[str] | None,
) -> set[uuid.UUID]:
    """Read model over the disclosure log: subjects whose data `recipient_id` received in [since, until), for
    `purpose`, of any of `categories` (matched in Python: JSON lists are queried differently by each
    database)."""
    statement = select(_disclosure.subject_id, _disclosure.categories).where(
        _disclosure.recipient_id == recipient_id,
        _disclosure.disclosed_at >= since,
        _disclosure.disclosed_at < until,
    )
    if purpose is not None:
        statement = statement.where(_disclosure.purpose == purpose)
    wanted = set(categories or ())
    rows = await session.execute(statement)
    return {subject_id for subject_id, cats in rows if not wanted or wanted & set(cats or ())}


_disclosure = sql.table_of(Disclosure).c
_audit = sql.table_of(AuditEvent).c


async def subjects_in_audit(
    session: AsyncSession, *, action: str | None, actor: str | None, since: datetime, until: datetime
) -> set[uuid.UUID]:
    """Read model over the audit trail: subjects of events of `action` and/or by `actor` in [since, until)."""
    statement = (
        select(_audit.subject_id)
        .distinct()
        .where(_audit.at >= since, _audit.at < until, _audit.subject_id.is_not(None))
    )
    if action is not None:
        statement = statement.where(_audit.action == action)
    if actor is not None:
        statement = statement.where(_audit.actor == actor)
    return set((await session.execute(statement)).scalars())


async def existing_subjects(session: AsyncSession, subject_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these subjects exist (the audit trail outlives a subject's row)."""
    found: set[uuid.UUID] = set()
    ids = sorted(subject_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = await session.execute(select(col(Subject.id)).where(col(Subject.id).in_(chunk)))
        found |= set(rows.scalars())
    return found


async def linked(session: AsyncSession, breach_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.execute(select(_LINKS.c.subject_id).where(_LINKS.c.breach_id == breach_id))
    return set(rows.scalars())


async def add_query(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_QUERY(values))


async def add_links(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await sql.execute(session, _LINKS.insert(), rows[start : start + CHUNK])


async def queries(session: AsyncSession, breach_id: uuid.UUID) -> Sequence[BreachQuery]:
    statement = (
        select(BreachQuery).where(col(BreachQuery.breach_id) == breach_id).order_by(col(BreachQuery.ran_at))
    )
    return (await session.execute(statement)).scalars().all()


async def list_links(
    session: AsyncSession, breach_id: uuid.UUID, *, notification: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[BreachSubject], str | None]:
    statement = sql.where_given(
        select(BreachSubject),
        (BreachSubject.breach_id, breach_id),
        (BreachSubject.notification, notification),
    )
    return await sql.paginate(
        session,
        statement,
        order=(BreachSubject.added_at, BreachSubject.subject_id),
        limit=limit,
        cursor=cursor,
    )


# --- notifications


async def queue_notifications(session: AsyncSession, breach_id: uuid.UUID, at: datetime) -> int:
    """Every linked subject not yet queued becomes pending; how many did."""
    return await sql.modify(
        session,
        update(_LINKS)
        .where(_LINKS.c.breach_id == breach_id, _LINKS.c.notification.is_(None))
        .values(notification=SubjectNotification.pending, queued_at=at),
    )


async def claim(
    session: AsyncSession, breach_id: uuid.UUID, *, now: datetime, stale_before: datetime, limit: int
) -> list[uuid.UUID]:
    """Claim up to `limit` pending notifications nobody holds (or whose claim is older than `stale_before`),
    in the caller's transaction. On PostgreSQL rows another sender is claiming are skipped, not waited for;
    SQLite's one writer at a time makes the claim exclusive by itself."""
    free = or_(_LINKS.c.claimed_at.is_(None), _LINKS.c.claimed_at < stale_before)
    candidates = list(
        (
            await session.execute(
                select(_LINKS.c.subject_id)
                .where(
                    _LINKS.c.breach_id == breach_id,
                    _LINKS.c.notification == SubjectNotification.pending,
                    free,
                )
                .order_by(_LINKS.c.queued_at, _LINKS.c.subject_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if candidates:
        await sql.modify(
            session,
            update(_LINKS)
            .where(_LINKS.c.breach_id == breach_id, _LINKS.c.subject_id.in_(candidates))
            .values(claimed_at=now),
        )
    return candidates


@dataclass(frozen=True, slots=True)
class Address:
    email: str | None
    name: str | None
    language: str | None


async def addresses(session: AsyncSession, subject_ids: list[uuid.UUID]) -> dict[uuid.UUID, Address]:
    """Read model over `subject` and `visitor`: each subject's address and name, and the language of the
    website device it last chose cookies on (None: not known)."""
    if not subject_ids:
        return {}
    people = await session.execute(
        select(col(Subject.id), col(Subject.email), col(Subject.name), col(Subject.status)).where(
            col(Subject.id).in_(subject_ids)
        )
    )
    devices = await session.execute(
        select(col(Visitor.subject_id), col(Visitor.language))
        .where(col(Visitor.subject_id).in_(subject_ids))
        .order_by(col(Visitor.recorded_at))
    )
    language: dict[uuid.UUID | None, str] = {}
    for subject_id, lang in devices:
        language[subject_id] = lang  # the newest wins
    return {
        subject_id: Address(email if status != "erased" else None, name, language.get(subject_id))
        for subject_id, email, name, status in people
    }


async def mark(session: AsyncSession, breach_id: uuid.UUID, subject_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(
        session,
        update(_LINKS)
        .where(_LINKS.c.breach_id == breach_id, _LINKS.c.subject_id == subject_id)
        .values(**changes),
    )


async def with_pending(session: AsyncSession) -> list[uuid.UUID]:
    """Breaches with notifications still pending (a sender stopped before it was done)."""
    rows = await session.execute(
        select(_LINKS.c.breach_id).where(_LINKS.c.notification == SubjectNotification.pending).distinct()
    )
    return list(rows.scalars())


# --- retention


async def closed_before(session: AsyncSession, cutoff: datetime) -> list[uuid.UUID]:
    rows = await session.execute(select(_BREACHES.c.id).where(_BREACHES.c.closed_at < cutoff))
    return list(rows.scalars())


async def delete_breaches(session: AsyncSession, breach_ids: list[uuid.UUID]) -> int:
    """The breaches, their links and their queries (the children first: SQLite may not cascade)."""
    if not breach_ids:
        return 0
    await sql.modify(session, delete(_LINKS).where(_LINKS.c.breach_id.in_(breach_ids)))
    await sql.modify(session, delete(_QUERIES).where(_QUERIES.c.breach_id.in_(breach_ids)))
    return await sql.modify(session, delete(_BREACHES).where(_BREACHES.c.id.in_(breach_ids)))
