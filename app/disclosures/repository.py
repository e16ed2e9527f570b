"""The disclosure log: the SQL, and the read model that checks a report's references."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.catalog.models import Purpose
from app.core import sql
from app.disclosures.models import Disclosure
from app.processors.models import Processor, ProcessorTask
from app.subjects.models import Subject


async def known(
    session: AsyncSession, subject_ids: set[uuid.UUID], recipient_ids: set[uuid.UUID], purposes: set[str]
) -> tuple[set[uuid.UUID], set[uuid.UUID], set[str]]:
    """Which of the subjects, recipients (processors) and purposes a report names exist: a read model over
    three other domains' tables, one query each, whatever the size of the batch."""
    subjects: set[uuid.UUID] = set()
    if subject_ids:
        found = await session.execute(select(col(Subject.id)).where(col(Subject.id).in_(subject_ids)))
        subjects = set(found.scalars())
    recipients = (
        set(
            (
                await session.execute(select(col(Processor.id)).where(col(Processor.id).in_(recipient_ids)))
            ).scalars()
        )
        if recipient_ids
        else set()
    )
    known_purposes = set(
        (await session.execute(select(col(Purpose.code)).where(col(Purpose.code).in_(purposes)))).scalars()
    )
    return subjects, recipients, known_purposes


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
