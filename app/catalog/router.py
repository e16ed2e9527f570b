"""Public catalog: who the controller is, what we process and why, and the privacy notice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.auth.deps import Admin
from app.catalog import service
from app.catalog.schemas import (
    ControllerRead,
    Language,
    PolicyList,
    PolicyPublish,
    PolicyRead,
    PolicySummary,
    PurposeCreate,
    PurposeList,
    PurposeRead,
    PurposeUpdate,
)
from app.core.db import SessionDep
from app.core.errors import AUTH, BODY, problems
from app.idempotency.deps import IdempotencyDep

router = APIRouter(tags=["catalog"])

PUBLIC_CACHE = "public, max-age=300"
Lang = Annotated[Language, Query(description="Language of the notice.")]


@router.get("/controller", response_model=ControllerRead, summary="Who is responsible for your data")
async def get_controller(request: Request, response: Response) -> ControllerRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return service.controller(request.app.state.settings)


@router.get("/purposes", response_model=PurposeList, responses=problems(),
            summary="The processing purposes, their legal bases and retention")
async def list_purposes(session: SessionDep, response: Response) -> PurposeList:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PurposeList(items=[PurposeRead.model_validate(p) for p in await service.list_purposes(session)])


@router.get("/purposes/{code}", response_model=PurposeRead, responses=problems(404, 422), summary="One purpose")
async def get_purpose(session: SessionDep, response: Response, code: Annotated[str, Path(max_length=64)]) -> PurposeRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PurposeRead.model_validate(await service.get_purpose(session, code))


@router.post("/purposes", status_code=201, response_model=PurposeRead, responses=problems(*AUTH, *BODY, 409),
             summary="Add a purpose (admin)")
async def create_purpose(body: PurposeCreate, session: SessionDep, caller: Admin,
                         idempotency: IdempotencyDep) -> PurposeRead:
    return await idempotency.run(
        session, caller,
        create=lambda: service.create_purpose(session, body, actor=caller),
        key_of=lambda purpose: purpose.code,
        load=lambda code: service.get_purpose(session, code),
        render=PurposeRead.model_validate,
    )


@router.patch("/purposes/{code}", response_model=PurposeRead, responses=problems(*AUTH, *BODY, 404),
              summary="Change a purpose (admin)")
async def update_purpose(code: Annotated[str, Path(max_length=64)], body: PurposeUpdate, session: SessionDep,
                         caller: Admin) -> PurposeRead:
    return PurposeRead.model_validate(await service.update_purpose(session, code, body, actor=caller))


@router.get("/policies", response_model=PolicyList, responses=problems(), summary="Every version of the notice")
async def list_policies(session: SessionDep, response: Response) -> PolicyList:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PolicyList(items=[PolicySummary.model_validate(p) for p in await service.list_policies(session)])


@router.get("/policies/current", response_model=PolicyRead, responses=problems(404, 422),
            summary="The privacy notice in force")
async def current_policy(session: SessionDep, response: Response, lang: Lang = "sv") -> PolicyRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await service.current_policy(session, lang)


@router.get("/policies/{version}", response_model=PolicyRead, responses=problems(404, 422),
            summary="One version of the notice, as it was published")
async def get_policy(session: SessionDep, response: Response,
                     version: Annotated[str, Path(max_length=32)], lang: Lang = "sv") -> PolicyRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await service.get_policy(session, version, lang)


@router.post("/policies", status_code=201, response_model=PolicySummary, responses=problems(*AUTH, *BODY, 409),
             summary="Publish a new version of the notice (admin)")
async def publish_policy(body: PolicyPublish, session: SessionDep, caller: Admin,
                         idempotency: IdempotencyDep) -> PolicySummary:
    return await idempotency.run(
        session, caller,
        create=lambda: service.publish_policy(session, body, actor=caller),
        key_of=lambda policy: policy.version,
        load=lambda version: service.get_policy_version(session, version),
        render=PolicySummary.model_validate,
    )
