"""Public catalog: who the controller is, what we process and why, and the privacy notice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

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
from app.core.openapi import AUTH, BODY, problems
from app.idempotency.deps import idempotent
from app.runtime import RuntimeDep

router = APIRouter(tags=["catalog"])

PUBLIC_CACHE = "public, max-age=300"
Lang = Annotated[Language, Query(description="Language of the notice.")]


@router.get("/controller", response_model=ControllerRead, summary="Who is responsible for your data")
async def get_controller(runtime: RuntimeDep, response: Response) -> ControllerRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return service.controller(runtime.settings)


@router.get(
    "/purposes",
    response_model=PurposeList,
    responses=problems(),
    summary="The processing purposes, their legal bases and retention",
)
async def list_purposes(session: SessionDep, response: Response) -> PurposeList:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PurposeList(items=[PurposeRead.model_validate(p) for p in await service.list_purposes(session)])


@router.get(
    "/purposes/{code}", response_model=PurposeRead, responses=problems(404, 422), summary="One purpose"
)
async def get_purpose(
    session: SessionDep, response: Response, code: Annotated[str, Path(max_length=64)]
) -> PurposeRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PurposeRead.model_validate(await service.get_purpose(session, code))


async def _purpose_again(code: str, session: AsyncSession) -> PurposeRead:
    """A retried creation (same Idempotency-Key): the purpose the first one created."""
    return PurposeRead.model_validate(await service.get_purpose(session, code))


@router.post(
    "/purposes",
    status_code=201,
    response_model=PurposeRead,
    responses=problems(*AUTH, *BODY, 409),
    summary="Add a purpose (admin)",
)
@idempotent(replay=_purpose_again, key_of=lambda purpose: purpose.code)
async def create_purpose(body: PurposeCreate, session: SessionDep, caller: Admin) -> PurposeRead:
    return PurposeRead.model_validate(await service.create_purpose(session, body, actor=caller))


@router.patch(
    "/purposes/{code}",
    response_model=PurposeRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Change a purpose (admin)",
)
async def update_purpose(
    code: Annotated[str, Path(max_length=64)], body: PurposeUpdate, session: SessionDep, caller: Admin
) -> PurposeRead:
    return PurposeRead.model_validate(await service.update_purpose(session, code, body, actor=caller))


@router.get(
    "/policies", response_model=PolicyList, responses=problems(), summary="Every version of the notice"
)
async def list_policies(session: SessionDep, response: Response) -> PolicyList:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return PolicyList(items=[PolicySummary.model_validate(p) for p in await service.list_policies(session)])


@router.get(
    "/policies/current",
    response_model=PolicyRead,
    responses=problems(404, 422),
    summary="The privacy notice in force",
)
async def current_policy(session: SessionDep, response: Response, lang: Lang = "sv") -> PolicyRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await service.current_policy(session, lang)


@router.get(
    "/policies/{version}",
    response_model=PolicyRead,
    responses=problems(404, 422),
    summary="One version of the notice, as it was published",
)
async def get_policy(
    session: SessionDep, response: Response, version: Annotated[str, Path(max_length=32)], lang: Lang = "sv"
) -> PolicyRead:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await service.get_policy(session, version, lang)


async def _policy_again(version: str, session: AsyncSession) -> PolicySummary:
    """A retried publication (same Idempotency-Key): the version the first one published."""
    return PolicySummary.model_validate(await service.get_policy_version(session, version))


@router.post(
    "/policies",
    status_code=201,
    response_model=PolicySummary,
    responses=problems(*AUTH, *BODY, 409),
    summary="Publish a new version of the notice (admin)",
)
@idempotent(replay=_policy_again, key_of=lambda policy: policy.version)
async def publish_policy(body: PolicyPublish, session: SessionDep, caller: Admin) -> PolicySummary:
    return PolicySummary.model_validate(await service.publish_policy(session, body, actor=caller))
