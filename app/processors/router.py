from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.deps import Admin, require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.processors import service
from app.processors.schemas import (
    ProcessorCreate,
    ProcessorCreated,
    ProcessorEnd,
    ProcessorRead,
    ProcessorUpdate,
    TaskComplete,
    TaskRead,
    TaskStatus,
)
from app.runtime import RuntimeDep

router = APIRouter(tags=["processors"])

AnyStaff = Annotated[Principal, Depends(require(Role.staff))]
TaskReader = Annotated[Principal, Depends(require({Role.processor, Role.staff}, Scope.disclosures_read))]
ProcessorOnly = Annotated[Principal, Depends(require(Role.processor))]


@router.post(
    "/processors",
    status_code=201,
    response_model=ProcessorCreated,
    responses=problems(*AUTH, *BODY),
    summary="Register a processor (admin)",
    description="A country outside the EU/EEA is flagged as a third-country transfer, which needs a "
    "`transfer` mechanism (adequacy decision, SCC module 1-4 with its date, BCR, or an Art. 49 derogation) "
    "before data may go there: until then `transfer_safeguarded` is false and disclosures to it are recorded "
    "flagged. Also its transfer impact assessment, sub-processors and the agreement's dates. With "
    "`webhook_url`, its tasks are delivered there, signed with the `webhook_secret` shown in this response "
    "only. Its API client (POST /v1/clients, role processor) mints tokens for its own id.",
)
@created("/v1/processors/{id}")
async def create_processor(body: ProcessorCreate, session: SessionDep, caller: Admin) -> ProcessorCreated:
    processor, secret = await service.create_processor(session, body, actor=caller)
    return ProcessorCreated(**service.render(processor, body.webhook_url).model_dump(), webhook_secret=secret)


@router.get(
    "/processors",
    response_model=Page[ProcessorRead],
    responses=problems(*AUTH, 422),
    summary="The processor registry",
)
async def list_processors(
    session: SessionDep, _caller: AnyStaff, limit: Limit = 50, cursor: Cursor = None
) -> Page[ProcessorRead]:
    items, next_cursor = await service.list_processors(session, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/processors/{processor_id}",
    response_model=ProcessorRead,
    responses=problems(*AUTH, 404, 422),
    summary="One processor",
)
async def get_processor(processor_id: uuid.UUID, session: SessionDep, _caller: AnyStaff) -> ProcessorRead:
    return await service.read_processor(session, processor_id)


@router.patch(
    "/processors/{processor_id}",
    response_model=ProcessorRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Edit a processor (admin)",
    description="Only the fields sent change; `null` clears an optional one (`transfer`, `tia_reference`, "
    "`sub_processors`, the agreement's dates). Checked as the processor would stand: a transfer mechanism "
    "for an EU/EEA country, or an agreement expiring before it was signed, is a 422. An ended processor: "
    "409. Audited.",
)
async def update_processor(
    processor_id: uuid.UUID, body: ProcessorUpdate, session: SessionDep, caller: Admin
) -> ProcessorRead:
    return await service.update_processor(session, processor_id, body, actor=caller)


@router.post(
    "/processors/{processor_id}/end",
    response_model=ProcessorRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="End a processor (admin)",
    description="The relationship ends at `ended_at` (now by default; never in the future). The processor "
    "stays in the registry and the record of processing; disclosures to it from then on are recorded flagged "
    "(`processor_ended`); its API clients get no more tokens and the tokens they hold are refused at once; "
    "its tasks stay, and staff still see the open ones. Ending it again: 409. Audited.",
)
async def end_processor(
    processor_id: uuid.UUID, session: SessionDep, caller: Admin, body: ProcessorEnd | None = None
) -> ProcessorRead:
    return await service.end_processor(session, processor_id, body or ProcessorEnd(), actor=caller)


@router.get(
    "/processor-tasks",
    response_model=Page[TaskRead],
    responses=problems(*AUTH, 422),
    summary="Recipient tasks (GDPR Art. 19): a processor's own, or all for staff",
    description="Tasks follow erasure, rectification and restriction of data a processor received, and are "
    "due with the rights request they carry out. `overdue` marks open tasks past `due_at`.",
)
async def list_tasks(
    session: SessionDep,
    runtime: RuntimeDep,
    caller: TaskReader,
    status: TaskStatus | None = None,
    processor_id: Annotated[
        uuid.UUID | None, Query(description="Staff only; a processor always sees its own.")
    ] = None,
    older_than_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    overdue: Annotated[bool, Query(description="Only open tasks past the deadline.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskRead]:
    tasks, next_cursor = await service.list_tasks(
        session,
        caller=caller,
        status=status,
        processor_id=processor_id,
        older_than_days=older_than_days,
        overdue_only=overdue,
        overdue_days=runtime.settings.processor_task_overdue_days,
        limit=limit,
        cursor=cursor,
    )
    return Page(
        items=[service.render_task(t, runtime.settings.processor_task_overdue_days) for t in tasks],
        next_cursor=next_cursor,
    )


@router.get(
    "/processor-tasks/{task_id}",
    response_model=TaskRead,
    responses=problems(*AUTH, 404, 422),
    summary="One recipient task, with what the processor needs to act",
    description="The categories the processor received, the identifiers it was given (to find the person, "
    "even after an erasure) and a rectification's corrected values, until the task is done; and the due "
    "date, the rights request's deadline. A processor reads its own tasks only (another's: 404).",
)
async def get_task(
    task_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep, caller: TaskReader
) -> TaskRead:
    task = await service.get_task(session, task_id, caller=caller)
    return service.render_task(task, runtime.settings.processor_task_overdue_days)


@router.post(
    "/processor-tasks/{task_id}/complete",
    response_model=TaskRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Acknowledge a task as done (the processor it is addressed to)",
    description="Idempotent: completing a done task again answers 200 with the task as it was completed "
    "(the first note stays). Once done, the task keeps only the categories; identifiers and corrected values "
    "are removed.",
)
async def complete_task(
    task_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    caller: ProcessorOnly,
    body: TaskComplete | None = None,
) -> TaskRead:
    task = await service.complete_task(session, task_id, body.note if body else None, caller=caller)
    return service.render_task(task, runtime.settings.processor_task_overdue_days)
