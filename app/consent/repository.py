"""Consent's SQL: the append-only events, the current state (their projection), and the read model a consent
write decides on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditChainHead
from app.catalog.models import CatalogVersion
from app.consent.models import ConsentEvent, ConsentState
from app.core import sql
from app.core.sql import Insert, Write
from app.subjects.models import Subject

_EVENTS, _STATES = sql.table_of(ConsentEvent), sql.table_of(ConsentState)
_SUBJECTS, _HEADS, _CATALOG = (
    sql.table_of(Subject),
    sql.table_of(AuditChainHead),
    sql.table_of(CatalogVersion),
)


def _forward_only(statement: Any) -> Any:
    """The projection only ever moves forward: atomic in the database, so that concurrent writers cannot lose
    an update, and an older event arriving late changes the history only."""
    newer = tuple_(_STATES.c.occurred_at, _STATES.c.recorded_at) < tuple_(
        statement.excluded.occurred_at, statement.excluded.recorded_at
    )
    return statement.on_conflict_do_update(
        index_elements=[_STATES.c.subject_id, _STATES.c.purpose],
        set_={
            c.name: getattr(statement.excluded, c.name)
            for c in _STATES.c
            if c.name not in ("subject_id", "purpose")
        },
        where=newer,
    )


_APPEND = Insert(_EVENTS, "consent_event")
_PROJECT = Insert(_STATES, "consent_state", on_conflict=_forward_only)


@dataclass(frozen=True, slots=True)
class WriteFacts:
    """What a consent write decides on: the subject's status (None: no such subject), the head of its audit
    chain (None: not started), and the catalog's version (for the worker's cached copy)."""

    subject_status: str | None
    chain_seq: int | None
    chain_hash: str | None
    catalog_version: int


# A read model across three domains' tables, on purpose: everything a consent write reads, in one round trip
# of three primary-key lookups (the catalog's one row always exists; the subject and the chain's head may
# not).
_WRITE_FACTS = (
    select(_SUBJECTS.c.status, _HEADS.c.seq, _HEADS.c.hash, _CATALOG.c.version.label("catalog_version"))
    .select_from(
        _CATALOG.outerjoin(_SUBJECTS, _SUBJECTS.c.id == bindparam("subject_id")).outerjoin(
            _HEADS, _HEADS.c.chain == bindparam("chain")
        )
    )
    .where(_CATALOG.c.id == literal(1))
)


async def write_facts(session: AsyncSession, subject_id: uuid.UUID, chain: str) -> WriteFacts:
    row = (await sql.run(session, _WRITE_FACTS, {"subject_id": subject_id, "chain": chain}))[0]
    return WriteFacts(row["status"], row["seq"], row["hash"], row["catalog_version"])


def append_event(event: dict[str, Any]) -> Write:
    return _APPEND(event)


def project(state: dict[str, Any]) -> Write:
    """The current state for the event's subject and purpose, if the event is the latest."""
    return _PROJECT(state)


async def get_event(session: AsyncSession, event_id: uuid.UUID) -> ConsentEvent | None:
    return await session.get(ConsentEvent, event_id, populate_existing=True)


async def current(session: AsyncSession, subject_id: uuid.UUID) -> Sequence[ConsentState]:
    statement = (
        select(ConsentState)
        .where(col(ConsentState.subject_id) == subject_id)
        .order_by(col(ConsentState.purpose))
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def history(
    session: AsyncSession, subject_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[Sequence[ConsentEvent], str | None]:
    return await sql.paginate(
        session,
        select(ConsentEvent).where(col(ConsentEvent.subject_id) == subject_id),
        order=(ConsentEvent.occurred_at, ConsentEvent.id),
        limit=limit,
        cursor=cursor,
    )


async def strip_evidence(session: AsyncSession, subject_id: uuid.UUID) -> None:
    await sql.modify(
        session,
        update(_EVENTS)
        .where(_EVENTS.c.subject_id == subject_id)
        .values(
            evidence_ip=None, evidence_user_agent=None, evidence_text_shown=None, evidence_visitor_id=None
        ),
    )


async def states_for(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], tuple[str, Any]]:
    rows = await session.execute(
        select(_STATES.c.subject_id, _STATES.c.purpose, _STATES.c.status, _STATES.c.occurred_at).where(
            sql.among(sql.dialect_of(session), _STATES.c.subject_id, "ids", list(subject_ids))
        )
    )
    return {(subject_id, purpose): (status, occurred_at) for subject_id, purpose, status, occurred_at in rows}


async def versions_given(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID], purposes: Sequence[str]
) -> dict[tuple[uuid.UUID, str], str]:
    """The notice version each granted consent among these subjects and purposes was given under (the
    decisions' renewal check, asked only when a purpose's text has changed)."""
    dialect = sql.dialect_of(session)
    statement = select(_STATES.c.subject_id, _STATES.c.purpose, _STATES.c.policy_version).where(
        sql.among(dialect, _STATES.c.subject_id, "subject_ids", list(subject_ids)),
        sql.among(dialect, _STATES.c.purpose, "purposes", list(purposes)),
        _STATES.c.status == "granted",
    )
    return {(s, p): v for s, p, v in await sql.execute(session, statement)}
