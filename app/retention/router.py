from __future__ import annotations

import contextlib
import uuid

from fastapi import APIRouter, BackgroundTasks, Request

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.retention import service
from app.retention.schemas import RunCreate, RunRead

router = APIRouter(prefix="/retention", tags=["retention"])


async def _execute(request: Request, run_id: uuid.UUID) -> None:
    # Whatever failed is recorded on the run (status failed) and in the log; the API has answered already.
    with contextlib.suppress(Exception):
        await service.execute(request.app.state.sessionmaker, run_id)


@router.post(
    "/runs",
    status_code=202,
    response_model=RunRead,
    responses=problems(*AUTH, *BODY, 409),
    summary="Start a retention sweep (admin)",
    description="Runs in the background; follow it with GET /v1/retention/runs/{id}. Deletes or "
    "anonymizes what the catalog's rules say has expired, skips subjects under a legal hold, "
    "and anonymizes subjects of whom nothing identifying is left once the relationship has "
    "ended. A dry run changes nothing and reports the same. One real run at a time (409).",
)
@created("/v1/retention/runs/{id}")  # 202: where to follow the run
async def start_run(
    body: RunCreate, request: Request, session: SessionDep, caller: Admin, background: BackgroundTasks
) -> RunRead:
    run = await service.start(session, dry_run=body.dry_run, actor=caller)  # a real run: holds the run lock
    background.add_task(_execute, request, run.id)  # after the commit: the run exists when it starts
    return RunRead.model_validate(run)


@router.get(
    "/runs", response_model=Page[RunRead], responses=problems(*AUTH, 422), summary="Retention runs (admin)"
)
async def list_runs(
    session: SessionDep, _caller: Admin, limit: Limit = 50, cursor: Cursor = None
) -> Page[RunRead]:
    runs, next_cursor = await service.list_runs(session, limit=limit, cursor=cursor)
    return Page(items=[RunRead.model_validate(r) for r in runs], next_cursor=next_cursor)


@router.get(
    "/runs/{run_id}",
    response_model=RunRead,
    responses=problems(*AUTH, 404, 422),
    summary="A retention run: progress and report (admin)",
)
async def get_run(run_id: uuid.UUID, session: SessionDep, _caller: Admin) -> RunRead:
    return RunRead.model_validate(await service.get(session, run_id))
