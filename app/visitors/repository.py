"""Visitor consents' SQL: the append-only events and each visitor's current state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import sql
from app.core.sql import Insert, Write
from app.visitors.models import Visitor, VisitorConsentEvent

_VISITORS, _EVENTS = sql.table_of(Visitor), sql.table_of(VisitorConsentEvent)
# What a choice replaces: everything but who the visitor is, since when, and whom it is linked to.
_STATE = [c.name for c in _VISITORS.c if c.name not in ("id", "subject_id", "created_at")]


def _replace_state(statement: Any) -> Any:
    """A choice replaces the visitor's state; the statement answers with the row it wrote (the guard of the
    event's insert: one statement on PostgreSQL)."""
    return statement.on_conflict_do_update(
        index_elements=[_VISITORS.c.id], set_={name: getattr(statement.excluded, name) for name in _STATE}
    ).returning(_VISITORS.c.id)


_SAVE_STATE = Insert(_VISITORS, "visitor", on_conflict=_replace_state)
_APPEND = Insert(_EVENTS, "visitor_event")
# The visitor's state, with the receipt of the event it stands on.
_BY_ID = (
    select(_VISITORS, _EVENTS.c.receipt)
    .join(_EVENTS, _EVENTS.c.id == _VISITORS.c.event_id)
    .where(_VISITORS.c.id == bindparam("id"))
)
_BATCH = 1000


def save_state(state: dict[str, Any]) -> Write:
    return _SAVE_STATE(state)


def append_event(event: dict[str, Any]) -> Write:
    return _APPEND(event)


async def write(session: AsyncSession, state: Write, event: Write) -> None:
    """The visitor's state and its event, together or not at all."""
    await sql.write_guarded(session, state, [event])


async def get(session: AsyncSession, visitor_id: str) -> dict[str, Any] | None:
    rows = await sql.run(session, _BY_ID, {"id": visitor_id})
    return rows[0] if rows else None


async def link(session: AsyncSession, visitor_id: str, subject_id: uuid.UUID) -> None:
    await sql.modify(
        session, update(_VISITORS).where(_VISITORS.c.id == visitor_id).values(subject_id=subject_id)
    )


async def forget_subject(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Unlink the subject's devices, and drop what their events say about the person (user agent, network)."""
    linked = select(_VISITORS.c.id).where(_VISITORS.c.subject_id == subject_id).scalar_subquery()
    await sql.modify(
        session, update(_EVENTS).where(_EVENTS.c.visitor_id.in_(linked)).values(user_agent=None, network=None)
    )
    await sql.modify(
        session, update(_VISITORS).where(_VISITORS.c.subject_id == subject_id).values(subject_id=None)
    )


async def purge_before(session: AsyncSession, cutoff: datetime) -> int:
    """Delete, in batches, the events recorded before `cutoff` and the visitors whose latest choice was
    (with them their events). Returns how many events went."""
    deleted = 0
    while True:
        batch = select(_EVENTS.c.id).where(_EVENTS.c.recorded_at < cutoff).limit(_BATCH).scalar_subquery()
        count = await sql.modify(session, delete(_EVENTS).where(_EVENTS.c.id.in_(batch)))
        deleted += count
        if count < _BATCH:
            break
    await sql.modify(session, delete(_VISITORS).where(_VISITORS.c.recorded_at < cutoff))
    return deleted
