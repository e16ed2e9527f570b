from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.audit import service
from app.audit.schemas import AuditEventRead
from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.openapi import AUTH, problems
from app.core.pagination import Cursor, Limit, Page

router = APIRouter(prefix="/audit-events", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Role.staff, Scope.audit_read))]


@router.get(
    "",
    response_model=Page[AuditEventRead],
    responses=problems(*AUTH, 422),
    summary="List audit events, newest first",
)
async def list_audit_events(
    session: SessionDep,
    _caller: AuditReader,
    subject_id: Annotated[uuid.UUID | None, Query(description="Only events about this subject.")] = None,
    action: Annotated[
        str | None,
        Query(max_length=80, pattern=r"^[a-z_.]+$", description="Only this action, e.g. `subject.read`."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEventRead]:
    items, next_cursor = await service.list_events(
        session, subject_id=subject_id, action=action, limit=limit, cursor=cursor
    )
    return Page(items=[AuditEventRead.model_validate(e) for e in items], next_cursor=next_cursor)
