from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.holds import service
from app.holds.schemas import HoldCreate, HoldLift, HoldRead

router = APIRouter(tags=["legal-holds"])


@router.post(
    "/subjects/{subject_id}/legal-holds",
    status_code=201,
    response_model=HoldRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Place a legal hold on a subject (admin)",
    description="For legal claims (GDPR Art. 17(3)(e)): while active, retention skips the subject and "
    "erasure is refused with the hold's reason.",
)
@created("/v1/legal-holds/{id}")
async def place_hold(subject_id: uuid.UUID, body: HoldCreate, session: SessionDep, caller: Admin) -> HoldRead:
    return service.render(await service.place(session, subject_id, body, actor=caller))


@router.get(
    "/legal-holds",
    response_model=Page[HoldRead],
    responses=problems(*AUTH, 422),
    summary="Legal holds (admin)",
)
async def list_holds(
    session: SessionDep,
    _caller: Admin,
    subject_id: uuid.UUID | None = None,
    active: Annotated[bool | None, Query(description="Only active (true) or ended (false).")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[HoldRead]:
    holds, next_cursor = await service.list_holds(
        session, subject_id=subject_id, active=active, limit=limit, cursor=cursor
    )
    return Page(items=[service.render(h) for h in holds], next_cursor=next_cursor)


@router.get(
    "/legal-holds/{hold_id}",
    response_model=HoldRead,
    responses=problems(*AUTH, 404, 422),
    summary="One legal hold (admin)",
)
async def get_hold(hold_id: uuid.UUID, session: SessionDep, _caller: Admin) -> HoldRead:
    return service.render(await service.get(session, hold_id))


@router.post(
    "/legal-holds/{hold_id}/lift",
    response_model=HoldRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Lift a legal hold (admin)",
)
async def lift_hold(
    hold_id: uuid.UUID, session: SessionDep, caller: Admin, body: HoldLift | None = None
) -> HoldRead:
    return service.render(await service.lift(session, hold_id, body.reason if body else None, actor=caller))
