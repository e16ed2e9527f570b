"""The disclosure log: the SQL, and the read model that checks a report's references."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.catalog.models import Purpose
from app.consent.models import ConsentEvent
from app.core import sql
from app.disclosures.models import Disclosure
from app.processors.models import Processor, ProcessorTask
from app.subjects.models import Subject


@dataclass(frozen=True)
class SubjectFacts:
    status: str
    erased_at: datetime | None


@dataclass(frozen=True)
class RecipientFacts:
    country: str
    transfer_mechanism: str | None
    ended_at: datetime | None
    dpa_expires_on: date | None


@dataclass
class Facts:
    """What a report's checks need (service._flags): the subjects, recipients and purposes it names (those
    that exist), and the consent history of its consent purposes for its subjects."""

    subjects: dict[uuid.UUID, SubjectFacts]
    recipients: dict[uuid.UUID, RecipientFacts]
    purposes: dict[str, str]  # code → legal basis
    consents: dict[
        tuple[uuid.UUID, str], list[tuple[datetime, str]]
    ]  # (subject, purpose) → (occurred_at, status)


async def facts(
    session: AsyncSession, subject_ids: set[uuid.UUID], recipient_ids: set[uuid.UUID], purposes: set[str]
) -> Facts:
    """A read model over four other domains' tables (subject, processor, purpose, consent_event), one query
    each, whatever the size of the batch."""
    found = Facts({}, {}, {}, {})
    if subject_ids:
        subject_rows = await session.execute(
            select(col(Subject.id), col(Subject.status), col(Subject.erased_at)).where(
                col(Subject.id).in_(subject_ids)
            )
        )
        found.subjects = {i: SubjectFacts(status, erased_at) for i, status, erased_at in subject_rows}
    if recipient_ids:
        recipient_rows = await session.execute(
            select(
                col(Processor.id),
                col(Processor.country),
                col(Processor.transfer_mechanism),
                col(Processor.ended_at),
                col(Processor.dpa_expires_on),
            ).where(col(Processor.id).in_(recipient_ids))
        )
        found.recipients = {i: RecipientFacts(c, m, e, x) for i, c, m, e, x in recipient_rows}
    if purposes:
        purpose_rows = await session.execute(
            select(col(Purpose.code), col(Purpose.legal_basis)).where(col(Purpose.code).in_(purposes))
        )
        found.purposes = {row[0]: row[1] for row in purpose_rows}
    consent_purposes = {p for p, basis in found.purposes.items() if basis == "consent"}
    if consent_purposes and found.subjects:
        consent_rows = await session.execute(
            select(
                col(ConsentEvent.subject_id),
                col(ConsentEvent.purpose),
                col(ConsentEvent.occurred_at),
                col(ConsentEvent.status),
            ).where(
                col(ConsentEvent.subject_id).in_(set(found.subjects)),
                col(ConsentEvent.purpose).in_(consent_purposes),
            )
        )
        for subject_id, purpose, occurred_at, status in consent_rows:
            found.consents.setdefault((subject_id, purpose), []).append((occurred_at, status))
    return found


async def disclosed_to(
    session: AsyncSession, processor_id: uuid.UUID, subject_ids: set[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of the subjects have been disclosed to the processor: by a disclosure to it in the log, or by a
    task addressed to it (a read model over processor_task). One query, whatever the size of the batch."""
    in_log = select(col(Disclosure.subject_id)).where(
        col(Disclosure.recipient_id) == processor_id, col(Disclosure.subject_id).in_(subject_ids)
    )
    in_tasks = select(col(ProcessorTask.subject_id)).where(
        col(ProcessorTask.processor_id) == processor_id, col(ProcessorTask.subject_id).in_(subject_ids)
    )
    return set((await session.execute(union(in_log, in_tasks))).scalars())


async def insert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await sql.execute(session, sql.table_of(Disclosure).insert(), rows)


async def get(session: AsyncSession, disclosure_id: uuid.UUID) -> Disclosure | None:
    return await session.get(Disclosure, disclosure_id)


async def list_all(
    session: AsyncSession,
    *,
    flagged: bool | None,
    recipient_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Disclosure], str | None]:
    """The log, newest recorded first, narrowed by the flag (ix_disclosure_flagged_recorded_at) or the
    recipient."""
    return await sql.paginate(
        session,
        sql.where_given(
            select(Disclosure), (Disclosure.flagged, flagged), (Disclosure.recipient_id, recipient_id)
        ),
        order=(Disclosure.recorded_at, Disclosure.id),
        limit=limit,
        cursor=cursor,
    )


async def list_for_subject(
    session: AsyncSession, subject_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[Sequence[Disclosure], str | None]:
    return await sql.paginate(
        session,
        select(Disclosure).where(col(Disclosure.subject_id) == subject_id),
        order=(Disclosure.disclosed_at, Disclosure.id),
        limit=limit,
        cursor=cursor,
    )


async def recipients_of(session: AsyncSession, subject_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        select(col(Disclosure.recipient_id)).where(col(Disclosure.subject_id) == subject_id).distinct()
    )
    return list(rows.scalars())


async def categories_by_recipient(session: AsyncSession, subject_id: uuid.UUID) -> dict[uuid.UUID, set[str]]:
    """Each recipient of the subject's data, with every category it was reported to have received."""
    rows = await session.execute(
        select(col(Disclosure.recipient_id), col(Disclosure.categories)).where(
            col(Disclosure.subject_id) == subject_id
        )
    )
    found: dict[uuid.UUID, set[str]] = {}
    for recipient_id, categories in rows:
        found.setdefault(recipient_id, set()).update(categories)
    return found


async def recipients_by_purpose(session: AsyncSession) -> dict[str, set[uuid.UUID]]:
    found: dict[str, set[uuid.UUID]] = {}
    for purpose, recipient_id in await session.execute(
        select(col(Disclosure.purpose), col(Disclosure.recipient_id)).distinct()
    ):
        found.setdefault(purpose, set()).add(recipient_id)
    return found
