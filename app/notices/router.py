"""Who is owed the privacy notice, and mailing it (staff). A subject's own deliveries are under
/v1/subjects/{id}/notice-deliveries (subjects' router)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query

from app.core.db import SessionDep
from app.core.openapi import AUTH, problems
from app.core.pagination import Cursor, Limit
from app.core.time import utc_now
from app.notices import service
from app.notices.schemas import MailingResult, NoticeDueList, NoticeDueRead
from app.runtime import RuntimeDep
from app.subjects.deps import StaffReader, StaffWriter

router = APIRouter(tags=["notices"])


@router.get(
    "/notice-deliveries/due",
    response_model=NoticeDueList,
    responses=problems(*AUTH, 422),
    summary="Subjects owed the privacy notice, soonest due first",
    description="A subject registered with data not collected from it (`source: public_register`) is owed "
    "the notice within one calendar month (GDPR Art. 14(3)(a)); a new notice version that changes a section "
    "concerning a subject makes it owed that version, due when it takes effect. `overdue=true`: only those "
    "past their due date.",
)
async def list_due(
    session: SessionDep,
    caller: StaffReader,
    overdue: Annotated[bool, Query(description="Only notices past their due date.")] = False,
    subject_id: Annotated[uuid.UUID | None, Query(description="Only this subject's.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> NoticeDueList:
    rows, next_cursor = await service.owed(
        session, overdue=overdue, subject_id=subject_id, limit=limit, cursor=cursor, actor=caller
    )
    now = utc_now()
    return NoticeDueList(
        items=[
            NoticeDueRead(
                subject_id=r.subject_id,
                reason=r.reason,
                version=r.version,
                due_at=r.due_at,
                overdue=r.due_at <= now,
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/notice-deliveries/due/mail",
    response_model=MailingResult,
    responses=problems(*AUTH, 422),
    summary="Mail the owed notices, one batch",
    description="Mails the next `limit` owed notices (soonest due first), each in the language the subject "
    "was last given a notice in (Swedish if none), records each as a delivery and settles it. Bounded, so it "
    "never outlasts a request: call again until `remaining` is 0 (a scheduler may). Mailings run side by "
    "side on PostgreSQL without sending a notice twice.",
)
async def mail_due(
    session: SessionDep,
    caller: StaffWriter,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many mails (default 100).")] = 100,
) -> MailingResult:
    result, mails = await service.mail_owed(session, limit=limit, actor=caller)
    for mail in mails:  # after the commit
        background.add_task(runtime.mailer.send, mail)
    return result
