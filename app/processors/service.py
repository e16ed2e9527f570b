"""The processor registry and the tasks addressed to processors (GDPR Art. 19)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.core.db import transaction
from app.core.errors import NotFound
from app.core.time import add_calendar_months, rfc3339, utc_now
from app.processors import repository
from app.processors.countries import is_third_country
from app.processors.models import Processor
from app.processors.models import ProcessorTask as ProcessorTask  # re-exported for other domains
from app.processors.schemas import (
    ProcessorCreate,
    ProcessorRead,
    RecipientRead,
    TaskDetails,
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
    return RecipientRead(
        id=processor.id,
        name=processor.name,
        country=processor.country,
        third_country=is_third_country(processor.country),
    )


def render(processor: Processor, webhook_url: str | None) -> ProcessorRead:
    return ProcessorRead(
        **recipient(processor).model_dump(),
        dpa_reference=processor.dpa_reference,
        contact_email=processor.contact_email,
        webhook_url=webhook_url,
        created_at=processor.created_at,
    )


async def create_processor(
    session: AsyncSession, data: ProcessorCreate, *, actor: Principal
) -> tuple[Processor, str | None]:
    """Register a processor; with a webhook URL, also its endpoint for its tasks (secret returned once)."""
    await transaction(session)
    processor_id = uuid.uuid4()
    await repository.insert_processor(
        session,
        {
            "id": processor_id,
            "name": data.name,
            "dpa_reference": data.dpa_reference,
            "country": data.country,
            "contact_email": data.contact_email,
            "created_at": utc_now(),
        },
    )
    secret = None
    if data.webhook_url is not None:
        _, secret = await webhooks.create_endpoint(
            session,
            url=data.webhook_url,
            processor_id=processor_id,
            actor=actor,
            event_types=[EventType.processor_task_created],
            description=f"Tasks for {data.name}",
            loc=("body", "webhook_url"),
        )
    await audit.record(session, actor, "processor.created", target=str(processor_id))
    return await get_processor(session, processor_id), secret


async def get_processor(session: AsyncSession, processor_id: uuid.UUID) -> Processor:
    processor = await repository.get_processor(session, processor_id)
    if processor is None:
        raise ProcessorNotFound("No processor with this id")
    return processor


async def processors_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Processor]:
    return await repository.by_ids(session, ids) if ids else {}


async def list_processors(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[ProcessorRead], str | None]:
    processors, next_cursor = await repository.list_processors(session, limit=limit, cursor=cursor)
    urls = await webhooks.processor_endpoint_urls(session, [p.id for p in processors])
    return [render(p, urls.get(p.id)) for p in processors], next_cursor


async def read_processor(session: AsyncSession, processor_id: uuid.UUID) -> ProcessorRead:
    processor = await get_processor(session, processor_id)
    return render(
        processor, (await webhooks.processor_endpoint_urls(session, [processor.id])).get(processor.id)
    )


# --- tasks
# -----------------------------------------------------------------------------------------------------


async def create_tasks(
    session: AsyncSession,
    subject_id: uuid.UUID,
    task_type: TaskType,
    details: Mapping[uuid.UUID, TaskDetails],
    *,
    actor: Principal,
    due_at: datetime | None = None,
) -> list[ProcessorTask]:
    """One open task per recipient (the keys of `details`, with what each needs to act), due with the request
    it carries out (else a calendar month from now, Art. 12(3)); each is announced (webhook to the processor,
    which reads the details from the API: no personal data rides in the payload)."""
    await transaction(session)
    now = utc_now()
    due = due_at or add_calendar_months(now, 1)
    tasks: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "processor_id": r,
            "subject_id": subject_id,
            "type": task_type,
            "status": TaskStatus.open,
            "created_at": now,
            "due_at": due,
            "details": details[r].model_dump(mode="json"),
            "completed_at": None,
            "note": None,
        }
        for r in sorted(details, key=str)
    ]
    await repository.insert_tasks(session, tasks)
    for task in tasks:
        await webhooks.emit(
            session,
            EventType.processor_task_created,
            {
                "task_id": str(task["id"]),
                "processor_id": str(task["processor_id"]),
                "subject_id": str(subject_id),
                "type": task_type,
                "created_at": rfc3339(now),
                "due_at": rfc3339(due),
                "categories": task["details"]["categories"],
            },
            subject_id=subject_id,
        )
    if tasks:
        await audit.record(session, actor, f"processor_task.created.{task_type}", subject_id=subject_id)
    return [ProcessorTask.model_construct(**task) for task in tasks]


def render_task(task: ProcessorTask, overdue_days: int) -> TaskRead:
    now = utc_now()
    deadline = task.due_at or task.created_at + timedelta(days=overdue_days)
    return TaskRead(
        id=task.id,
        processor_id=task.processor_id,
        subject_id=task.subject_id,
        type=task.type,
        status=task.status,
        created_at=task.created_at,
        due_at=task.due_at,
        details=TaskDetails.model_validate(task.details or {"categories": []}),
        completed_at=task.completed_at,
        note=task.note,
        overdue=task.status == TaskStatus.open and deadline < now,
    )


async def get_task(session: AsyncSession, task_id: uuid.UUID, *, caller: Principal) -> ProcessorTask:
    """A task the caller may see: staff any, a processor its own (another's does not exist)."""
    task = await repository.get_task(session, task_id)
    if task is None or (caller.role == Role.processor and task.processor_id != caller.processor_id):
        raise TaskNotFound("Processor task not found")
    return task


async def list_tasks(
    session: AsyncSession,
    *,
    caller: Principal,
    status: TaskStatus | None,
    processor_id: uuid.UUID | None,
    older_than_days: int | None,
    overdue_only: bool,
    overdue_days: int,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[ProcessorTask], str | None]:
    """A processor sees its own tasks only; staff see all and filter."""
    if caller.role == Role.processor:
        processor_id = caller.processor_id
    now = utc_now()
    if overdue_only:
        status = TaskStatus.open
    created_before = now - timedelta(days=older_than_days) if older_than_days is not None else None
    return await repository.list_tasks(
        session,
        processor_id=processor_id,
        status=status,
        created_before=created_before,
        # Past due: past `due_at`, or, for a task without one, open longer than the configured days.
        overdue_at=(now, now - timedelta(days=overdue_days)) if overdue_only else None,
        limit=limit,
        cursor=cursor,
    )


async def complete_task(
    session: AsyncSession, task_id: uuid.UUID, note: str | None, *, caller: Principal
) -> ProcessorTask:
    """Only the processor the task is addressed to completes it; to anyone else it does not exist. Completing
    a done task again changes nothing and answers the same (a retry after a lost response is safe)."""
    await transaction(session)
    task = await repository.get_task(session, task_id, lock=True)
    if task is None or task.processor_id != caller.processor_id:
        raise TaskNotFound("Processor task not found")
    if task.status == TaskStatus.done:
        return task  # idempotent: a retried acknowledgement finds it done, as it left it
    completed_at = utc_now()
    # The identifiers and corrected values served their purpose: only the categories stay on record.
    kept = {"categories": (task.details or {}).get("categories", [])}
    await repository.update_task(
        session, task.id, status=TaskStatus.done, completed_at=completed_at, note=note, details=kept
    )
    await webhooks.emit(
        session,
        EventType.processor_task_completed,
        {
            "task_id": str(task.id),
            "processor_id": str(task.processor_id),
            "subject_id": str(task.subject_id),
            "type": task.type,
            "completed_at": rfc3339(completed_at),
        },
        subject_id=task.subject_id,
    )
    await audit.record(
        session,
        caller,
        f"processor_task.completed.{task.type}",
        subject_id=task.subject_id,
        target=str(task.id),
    )
    completed = await repository.get_task(session, task.id)
    assert completed is not None
    return completed


async def all_processors(session: AsyncSession) -> Sequence[Processor]:
    return await repository.all_processors(session)
