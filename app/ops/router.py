"""Liveness, readiness and metrics: outside /v1, never touching personal data. Liveness and readiness are
public (load balancers and orchestrators probe them); metrics need a staff token, of any scope (they tell
an outsider how the service is used and how it is doing: docs/security.md). In development only, the mail
viewer too (app.ops.dev)."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import BaseModel

from app.auth.deps import require
from app.auth.principals import Principal, Role
from app.core.openapi import AUTH, problems
from app.ops import dev, service

router = APIRouter(tags=["operations"])
# Any staff token: Prometheus gets its own, from a staff API client with no scopes (docs/operations.md).
MetricsReader = Annotated[Principal, Depends(require(Role.staff))]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None
    expected_revision: str


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database reachable and migrated to head",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(request: Request) -> JSONResponse:
    expected = request.app.state.expected_revision
    ready, database, revision = await service.readiness(request.app.state.engine, expected)
    body = Readiness(
        status="ready" if ready else "not ready",
        database=database,
        schema_revision=revision,
        expected_revision=expected,
    )
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)


@router.get(
    "/metrics",
    summary="Prometheus metrics (a staff token of any scope)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **problems(*AUTH),
    },
)
async def metrics(_caller: MetricsReader) -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # several uvicorn workers: sum over their files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves its __init__ unannotated
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


router.include_router(dev.router)
