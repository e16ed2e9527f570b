"""The processor registry and the tasks addressed to processors (GDPR Art. 19)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.errors import Conflict, NotFound
from app.core.pagination import paginate
from app.core.security import Principal, Role
from app.core.time import utc_now
from app.processors.countries import is_third_country
from app.processors.models import Processor, ProcessorTask
from app.processors.schemas import (
    ProcessorCreate,
    ProcessorRead,
    RecipientRead,
    TaskRead,
    TaskStatus,
    TaskType,
)
from app.webhooks import service as webhooks
from app.webhooks.schemas import EventType


class ProcessorNotFound(NotFound):
    title = "Processor not found"


class TaskNotFound(NotFound):
    title = "Processor task not found"


def recipient(processor: Processor) -> RecipientRead:
    return RecipientRead(id=processor.id, name=processor.name, country=processor.country,
                         third_country=is_third_country(processor.country))


def render(processor: Processor, webhook_url: str | None) -> ProcessorRead:
    return ProcessorRead(**recipient(processor).model_dump(), dpa_reference=processor.dpa_reference,
                         contact_email=processor.contact_email, webhook_url=webhook_url,
                         created_at=processor.created_at)


async def create_processor(session: AsyncSession, keys: Keys, settings: Settings, data: ProcessorCreate, *,
                           actor: Principal) -> tuple[Processor, str | None]:
    """Register a processor; with a webhook URL, also its endpoint for its tasks (secret returned once)."""
    processor = Processor(name=data.name, dpa_reference=data.dpa_reference, country=data.country,
                          contact_email=data.contact_email)
    session.add(processor)
    await session.flush()
    secret = None
    if data.webhook_url is not None:
        _, secret = await webhooks.create_endpoint(
            session, keys, settings, url=data.webhook_url, processor_id=processor.id, actor=actor,
            event_types=[EventType.processor_task_created], description=f"Tasks for {processor.name}",
            loc=("body", "webhook_url"))
    await audit.record(session, actor, "processor.created", target=str(processor.id))
    return processor, secret


async def get_processor(session: AsyncSession, processor_id: uuid.UUID) -> Processor:
    processor = await session.get(Processor, processor_id)
    if processor is None:
        raise ProcessorNotFound("No processor with this id")
    return processor


async def processors_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Processor]:
    if not ids:
        return {}
    rows = await session.execute(select(Processor).where(Processor.id.in_(ids)))
    return {p.id: p for p in rows.scalars()}


async def list_processors(session: AsyncSession, *, limit: int, cursor: str | None
                          ) -> tuple[list[ProcessorRead], str | None]:
    processors, next_cursor = await paginate(session, select(Processor), order=(Processor.created_at, Processor.id),
                                             limit=limit, cursor=cursor, key_type=uuid.UUID)
    urls = await webhooks.processor_endpoint_urls(session, [p.id for p in processors])
    return [render(p, urls.get(p.id)) for p in processors], next_cursor


async def read_processor(session: AsyncSession, processor_id: uuid.UUID) -> ProcessorRead:
    processor = await get_processor(session, processor_id)
    return render(processor, (await webhooks.processor_endpoint_urls(session, [processor.id])).get(processor.id))


# --- tasks -----------------------------------------------------------------------------------------------------


async def create_tasks(session: AsyncSession, subject_id: uuid.UUID, task_type: TaskType,
                       recipient_ids: Sequence[uuid.UUID], *, actor: Principal) -> list[ProcessorTask]:
    """One open task per recipient, in the caller's transaction; each is announced (webhook to the processor)."""
    now = utc_now()
    tasks = [ProcessorTask(processor_id=r, subject_id=subject_id, type=task_type, status=TaskStatus.open,
                           created_at=now) for r in sorted(set(recipient_ids), key=str)]
    session.add_all(tasks)
    await session.flush()
    for task in tasks:
        await webhooks.emit(session, EventType.processor_task_created, {
            "task_id": str(task.id), "processor_id": str(task.processor_id), "subject_id": str(subject_id),
            "type": task_type, "created_at": now.isoformat()}, subject_id=subject_id)
    if tasks:
        await audit.record(session, actor, f"processor_task.created.{task_type}", subject_id=subject_id)
    return tasks


def render_task(task: ProcessorTask, overdue_days: int) -> TaskRead:
    overdue = task.status == TaskStatus.open and task.created_at < utc_now() - timedelta(days=overdue_days)
    return TaskRead(id=task.id, processor_id=task.processor_id, subject_id=task.subject_id, type=task.type,
                    status=task.status, created_at=task.created_at, completed_at=task.completed_at, note=task.note,
                    overdue=overdue)


async def list_tasks(
    session: AsyncSession, *, caller: Principal, status: TaskStatus | None, processor_id: uuid.UUID | None,
    older_than_days: int | None, overdue_only: bool, overdue_days: int, limit: int, cursor: str | None,
) -> tuple[Sequence[ProcessorTask], str | None]:
    """A processor sees its own tasks only; staff see all and filter."""
    statement = select(ProcessorTask)
    if caller.role == Role.processor:
        processor_id = caller.processor_id
    if processor_id is not None:
        statement = statement.where(ProcessorTask.processor_id == processor_id)
    if overdue_only:
        status = TaskStatus.open
        older_than_days = max(older_than_days or 0, overdue_days)
    if status is not None:
        statement = statement.where(ProcessorTask.status == status)
    if older_than_days is not None:
        statement = statement.where(ProcessorTask.created_at < utc_now() - timedelta(days=older_than_days))
    return await paginate(session, statement, order=(ProcessorTask.created_at, ProcessorTask.id), limit=limit,
                          cursor=cursor, key_type=uuid.UUID)


async def complete_task(session: AsyncSession, task_id: uuid.UUID, note: str | None, *,
                        caller: Principal) -> ProcessorTask:
    """Only the processor the task is addressed to completes it; to anyone else it does not exist."""
    task = await session.get(ProcessorTask, task_id)
    if task is None or task.processor_id != caller.processor_id:
        raise TaskNotFound("Processor task not found")
    if task.status == TaskStatus.done:
        raise Conflict("The task is already completed")
    task.status, task.completed_at, task.note = TaskStatus.done, utc_now(), note
    await session.flush()
    await webhooks.emit(session, EventType.processor_task_completed, {
        "task_id": str(task.id), "processor_id": str(task.processor_id), "subject_id": str(task.subject_id),
        "type": task.type, "completed_at": task.completed_at.isoformat()}, subject_id=task.subject_id)
    await audit.record(session, caller, f"processor_task.completed.{task.type}", subject_id=task.subject_id,
                       target=str(task.id))
    return task


async def all_processors(session: AsyncSession) -> Sequence[Processor]:
    return (await session.execute(select(Processor).order_by(Processor.name))).scalars().all()
