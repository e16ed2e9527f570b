from __future__ import annotations

import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope
from app.breaches import service
from app.breaches.schemas import (
    BreachAction,
    BreachCreate,
    BreachNotificationRun,
    BreachNotifySubjects,
    BreachQueryRead,
    BreachRead,
    BreachReportCreate,
    BreachReportRead,
    BreachStatus,
    BreachSubjectRead,
    SubjectNotification,
    SubjectQuery,
)
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.idempotency.deps import idempotent

router = APIRouter(tags=["breaches"])

Manager = Annotated[Principal, Depends(require(Role.staff, Scope.breaches_manage))]
Reporter = Annotated[Principal, Depends(require(Role.processor))]


async def _send(request: Request, breach_id: uuid.UUID) -> None:
    # After the commit and the answer. Whatever fails is logged; what is unsent stays pending, and the next
    # POST .../subject-notifications takes it up again.
    with contextlib.suppress(Exception):
        await service.send_pending(request.app.state.sessionmaker, breach_id)


async def _breach_again(key: str, session: AsyncSession) -> BreachRead:
    """A retried registration (same Idempotency-Key): the breach the first one registered."""
    return await service.read(session, uuid.UUID(key))


async def _report_again(key: str, session: AsyncSession, caller: Principal) -> BreachReportRead:
    return await service.read_report(session, uuid.UUID(key), caller=caller)


@router.post(
    "/breaches",
    status_code=201,
    response_model=BreachRead,
    responses=problems(*AUTH, *BODY),
    summary="Register a personal data breach (Art. 33(5))",
    description="`aware_at` (default now) starts the 72 hours within which IMY is to be notified (`due_at`, "
    "Art. 33(1)). Announced as the webhook event `breach.reported`.",
)
@created("/v1/breaches/{id}")
@idempotent(replay=_breach_again)
async def register_breach(body: BreachCreate, session: SessionDep, caller: Manager) -> BreachRead:
    return await service.create(session, body, actor=caller)


@router.get(
    "/breaches",
    response_model=Page[BreachRead],
    responses=problems(*AUTH, 422),
    summary="The breach register",
)
async def list_breaches(
    session: SessionDep,
    _caller: Manager,
    status: BreachStatus | None = None,
    overdue: Annotated[
        bool | None,
        Query(description="IMY not notified (nor decided against) and past `due_at` (true), or not (false)."),
    ] = None,
    processor_id: Annotated[uuid.UUID | None, Query(description="Reported by this processor.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BreachRead]:
    items, next_cursor = await service.list_breaches(
        session, status=status, overdue=overdue, processor_id=processor_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/breaches/{breach_id}",
    response_model=BreachRead,
    responses=problems(*AUTH, 404, 422),
    summary="One breach",
)
async def get_breach(breach_id: uuid.UUID, session: SessionDep, _caller: Manager) -> BreachRead:
    return await service.read(session, breach_id)


@router.post(
    "/breaches/{breach_id}/actions",
    response_model=BreachRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Move a breach on",
    description="`assess` (open or assessed → assessed): the risk, and whether IMY and the subjects are "
    "told, each with its reason; IMY may be left untold only for a breach unlikely to result in a risk, "
    "and the subjects of a high-risk one only on an Art. 34(3) ground (422). `record_imy_notification` "
    "(assessed → notified): IMY's reference; after `due_at` only with `delay_reason`. "
    "`record_no_notification` (assessed → not_notified): as the assessment decided. `close` (notified or "
    "not_notified → closed): once every subject to be told has been. Anything else is a 409. Announced as "
    "`breach.updated`.",
)
async def act(
    breach_id: uuid.UUID, body: Annotated[BreachAction, Body()], session: SessionDep, caller: Manager
) -> BreachRead:
    return await service.act(session, breach_id, body, actor=caller)


@router.post(
    "/breaches/{breach_id}/subject-queries",
    status_code=201,
    response_model=BreachQueryRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Find the subjects a breach affected",
    description="`disclosures`: every subject whose data the recipient received in [`from`, `until`) (the "
    "disclosure log), optionally for one purpose or any of some categories. `audit`: every subject that "
    "audit events of `action` and/or by `actor` concerned in the window (the audit trail). What it finds "
    "is linked to the breach; the query and its counts are saved with it.",
)
@created("/v1/breaches/{breach_id}/subject-queries/{id}")
async def query_subjects(
    breach_id: uuid.UUID, body: Annotated[SubjectQuery, Body()], session: SessionDep, caller: Manager
) -> BreachQueryRead:
    return await service.query_subjects(session, breach_id, body, actor=caller)


@router.get(
    "/breaches/{breach_id}/subject-queries",
    response_model=list[BreachQueryRead],
    responses=problems(*AUTH, 404, 422),
    summary="The queries run for a breach, and what each found",
)
async def list_queries(breach_id: uuid.UUID, session: SessionDep, _caller: Manager) -> list[BreachQueryRead]:
    return await service.list_queries(session, breach_id)


@router.get(
    "/breaches/{breach_id}/subject-queries/{query_id}",
    response_model=BreachQueryRead,
    responses=problems(*AUTH, 404, 422),
    summary="One query run for a breach, and what it found",
)
async def get_query(
    breach_id: uuid.UUID, query_id: uuid.UUID, session: SessionDep, _caller: Manager
) -> BreachQueryRead:
    return await service.get_query(session, breach_id, query_id)


@router.get(
    "/breaches/{breach_id}/subjects",
    response_model=Page[BreachSubjectRead],
    responses=problems(*AUTH, 404, 422),
    summary="The subjects a breach affected, and whether each has been told",
)
async def list_subjects(
    breach_id: uuid.UUID,
    session: SessionDep,
    caller: Manager,
    notification: SubjectNotification | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[BreachSubjectRead]:
    items, next_cursor = await service.list_subjects(
        session, breach_id, notification=notification, limit=limit, cursor=cursor, actor=caller
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/breaches/{breach_id}/subject-notifications",
    status_code=202,
    response_model=BreachNotificationRun,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Tell the affected subjects (Art. 34)",
    description="Queues one mail for every linked subject not yet queued and sends them after the answer, "
    "in batches (follow them at GET .../subjects?notification=pending). Each mail is in the subject's "
    "language when known (else Swedish and English), and says what happened, the likely consequences, "
    "the measures, what the person can do, and the data protection contact. Nobody is mailed twice; a "
    "second call queues only subjects linked since, and resumes what a stopped sender left. Allowed once "
    "the assessment decided to tell the subjects.",
)
async def notify_subjects(
    breach_id: uuid.UUID,
    body: BreachNotifySubjects,
    request: Request,
    session: SessionDep,
    caller: Manager,
    background: BackgroundTasks,
) -> BreachNotificationRun:
    run = await service.request_notifications(session, breach_id, body, actor=caller)
    background.add_task(_send, request, breach_id)
    return run


# --- processors (Art. 33(2))


@router.post(
    "/breach-reports",
    status_code=201,
    response_model=BreachReportRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Report a breach to WeSafe (a processor, Art. 33(2))",
    description="For a processor's own token. WeSafe is aware from the moment the report arrives, and staff "
    "are alerted (webhook `breach.reported`). The processor sees its own reports only.",
)
@created("/v1/breach-reports/{id}")
@idempotent(replay=_report_again)
async def report_breach(body: BreachReportCreate, session: SessionDep, caller: Reporter) -> BreachReportRead:
    return await service.report(session, body, actor=caller)


@router.get(
    "/breach-reports",
    response_model=Page[BreachReportRead],
    responses=problems(*AUTH, 422),
    summary="A processor's own breach reports",
)
async def list_reports(
    session: SessionDep, caller: Reporter, limit: Limit = 50, cursor: Cursor = None
) -> Page[BreachReportRead]:
    items, next_cursor = await service.list_reports(session, caller=caller, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/breach-reports/{breach_id}",
    response_model=BreachReportRead,
    responses=problems(*AUTH, 404, 422),
    summary="One of a processor's own breach reports",
)
async def get_report(breach_id: uuid.UUID, session: SessionDep, caller: Reporter) -> BreachReportRead:
    return await service.read_report(session, breach_id, caller=caller)
