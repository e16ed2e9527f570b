"""Rights requests and their history: the SQL, and the read model a filing decides on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditChainHead
from app.core import sql
from app.core.sql import Insert, Write
from app.rights_requests.models import RightsRequest, RightsRequestEvent
from app.rights_requests.schemas import OPEN
from app.subjects.models import Subject

_REQUESTS, _EVENTS = sql.table_of(RightsRequest), sql.table_of(RightsRequestEvent)
_SUBJECTS, _HEADS = sql.table_of(Subject), sql.table_of(AuditChainHead)
_INSERT_REQUEST = Insert(_REQUESTS, "request")
_INSERT_EVENT = Insert(_EVENTS, "request_event")


@dataclass(frozen=True, slots=True)
class FilingFacts:
    """What filing a request decides on: the subject's status (None: no such subject) and address, and the
    head
    of its audit chain (None: not started)."""

    subject_status: str | None
    email: str | None
    chain_seq: int | None
    chain_hash: str | None


# A read model across the subjects' and the audit trail's tables, on purpose: a filing reads once and writes
# once (bench/README.md).
_FILING_FACTS = (
    select(_SUBJECTS.c.status, _SUBJECTS.c.email, _HEADS.c.seq, _HEADS.c.hash)
    .select_from(_SUBJECTS)
    .outerjoin(_HEADS, _HEADS.c.chain == bindparam("chain"))
    .where(_SUBJECTS.c.id == bindparam("subject_id"))
)


async def filing_facts(session: AsyncSession, subject_id: uuid.UUID, chain: str) -> FilingFacts:
    rows = await sql.run(session, _FILING_FACTS, {"subject_id": subject_id, "chain": chain})
    if not rows:
        return FilingFacts(None, None, None, None)
    row = rows[0]
    return FilingFacts(row["status"], row["email"], row["seq"], row["hash"])


def new_request(values: dict[str, Any]) -> Write:
    return _INSERT_REQUEST(values)


def history_entry(values: dict[str, Any]) -> Write:
    return _INSERT_EVENT(values)


async def add_history(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, history_entry(values))


async def get(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False) -> RightsRequest | None:
    return await session.get(RightsRequest, request_id, populate_existing=True, with_for_update=lock or None)


async def by_external_id(session: AsyncSession, origin: str, external_id: str) -> RightsRequest | None:
    statement = select(RightsRequest).where(
        col(RightsRequest.origin) == origin, col(RightsRequest.external_id) == external_id
    )
    result = await session.execute(statement.execution_options(populate_existing=True))
    return result.scalars().first()


async def update_request(session: AsyncSession, request_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_REQUESTS).where(_REQUESTS.c.id == request_id).values(**changes))


async def list_requests(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID | None,
    status: str | None,
    type_: str | None,
    overdue_at: datetime | None,
    on_time_at: datetime | None,
    due_before: datetime | None,
    limit: int,
    cursor: str | None,
    unmatched: bool | None = None,
) -> tuple[Sequence[RightsRequest], str | None]:
    """`overdue_at`: open and past due then (`on_time_at`: not so); `due_before`: open and due by then;
    `unmatched`: matched to no subject (false: matched to one)."""
    statement = sql.where_given(
        select(RightsRequest),
        (RightsRequest.subject_id, subject_id),
        (RightsRequest.status, status),
        (RightsRequest.type, type_),
    )
    if unmatched is not None:
        matched_to = col(RightsRequest.subject_id)
        statement = statement.where(matched_to.is_(None) if unmatched else matched_to.is_not(None))
    if overdue_at is not None:
        statement = statement.where(
            col(RightsRequest.status).in_(OPEN) & (col(RightsRequest.due_at) < overdue_at)
        )
    if on_time_at is not None:
        statement = statement.where(
            ~(col(RightsRequest.status).in_(OPEN) & (col(RightsRequest.due_at) < on_time_at))
        )
    if due_before is not None:
        statement = statement.where(
            col(RightsRequest.status).in_(OPEN), col(RightsRequest.due_at) <= due_before
        )
    return await sql.paginate(
        session,
        statement,
        order=(RightsRequest.received_at, RightsRequest.id),
        limit=limit,
        cursor=cursor,
    )


async def of_subject(session: AsyncSession, subject_id: uuid.UUID) -> Sequence[RightsRequest]:
    statement = (
        select(RightsRequest)
        .where(col(RightsRequest.subject_id) == subject_id)
        .order_by(col(RightsRequest.received_at))
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def histories(session: AsyncSession, request_ids: Sequence[uuid.UUID]) -> Sequence[RightsRequestEvent]:
    """The history entries of these requests, in order."""
    return (
        (
            await session.execute(
                select(RightsRequestEvent)
                .where(col(RightsRequestEvent.request_id).in_(request_ids))
                .order_by(col(RightsRequestEvent.at), col(RightsRequestEvent.id))
            )
        )
        .scalars()
        .all()
    )


async def forget_details(session: AsyncSession, subject_id: uuid.UUID) -> None:
    await sql.modify(
        session, update(_REQUESTS).where(_REQUESTS.c.subject_id == subject_id).values(details=None)
    )
