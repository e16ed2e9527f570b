"""The processor registry and the tasks addressed to processors: the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import sql
from app.core.sql import Insert
from app.processors.models import Processor, ProcessorTask

_PROCESSORS, _TASKS = sql.table_of(Processor), sql.table_of(ProcessorTask)
_INSERT_PROCESSOR = Insert(_PROCESSORS, "processor")


async def insert_processor(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_PROCESSOR(values))


async def get_processor(
    session: AsyncSession, processor_id: uuid.UUID, *, lock: bool = False
) -> Processor | None:
    return await session.get(Processor, processor_id, populate_existing=True, with_for_update=lock or None)


async def update_processor(session: AsyncSession, processor_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_PROCESSORS).where(_PROCESSORS.c.id == processor_id).values(**changes))


async def by_ids(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Processor]:
    rows = await session.execute(select(Processor).where(col(Processor.id).in_(ids)))
    return {p.id: p for p in rows.scalars()}


async def list_processors(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[Processor], str | None]:
    return await sql.paginate(
        session,
        select(Processor),
        order=(Processor.created_at, Processor.id),
        limit=limit,
        cursor=cursor,
    )


async def all_processors(session: AsyncSession) -> Sequence[Processor]:
    return (await session.execute(select(Processor).order_by(col(Processor.name)))).scalars().all()


async def insert_tasks(session: AsyncSession, tasks: list[dict[str, Any]]) -> None:
    if tasks:
        await sql.execute(session, _TASKS.insert(), tasks)


async def list_tasks(
    session: AsyncSession,
    *,
    processor_id: uuid.UUID | None,
    status: str | None,
    created_before: datetime | None,
    overdue_at: tuple[datetime, datetime] | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[ProcessorTask], str | None]:
    """`overdue_at` (now, the creation time before which a task without a due date is late)."""
    statement = sql.where_given(
        select(ProcessorTask), (ProcessorTask.processor_id, processor_id), (ProcessorTask.status, status)
    )
    if created_before is not None:
        statement = statement.where(col(ProcessorTask.created_at) < created_before)
    if overdue_at is not None:
        now, late_if_created_before = overdue_at
        due = col(ProcessorTask.due_at)
        statement = statement.where(
            or_(due < now, and_(due.is_(None), col(ProcessorTask.created_at) < late_if_created_before))
        )
    return await sql.paginate(
        session,
        statement,
        order=(ProcessorTask.created_at, ProcessorTask.id),
        limit=limit,
        cursor=cursor,
    )


async def get_task(session: AsyncSession, task_id: uuid.UUID, *, lock: bool = False) -> ProcessorTask | None:
    return await session.get(ProcessorTask, task_id, populate_existing=True, with_for_update=lock or None)


async def update_task(session: AsyncSession, task_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_TASKS).where(_TASKS.c.id == task_id).values(**changes))
