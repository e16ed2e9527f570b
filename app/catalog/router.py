"""Public catalog: who the controller is, what we process and why, and the privacy notice."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import Admin
from app.catalog import service
from app.catalog.schemas import (
    ControllerRead,
    CookieCategoryCode,
    CookieCategoryEntry,
    CookieCategoryUpdate,
    CookieCreate,
    CookieDeclaration,
    CookieEntry,
    CookieUpdate,
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
from app.core.responses import created
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
@created("/v1/purposes/{code}")
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
    return await service.published_policy(session, version, lang)


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
@created("/v1/policies/{version}")
@idempotent(replay=_policy_again, key_of=lambda policy: policy.version)
async def publish_policy(body: PolicyPublish, session: SessionDep, caller: Admin) -> PolicySummary:
    return PolicySummary.model_validate(await service.publish_policy(session, body, actor=caller))


# --- the cookie declaration ---------------------------------------------------------------------------------


@router.get(
    "/cookies",
    response_model=CookieDeclaration,
    responses=problems(404, 422),
    summary="The website's cookie declaration (public; what the banner shows)",
    description="The cookie categories (each but `necessary` allowed by consent to a purpose) and the "
    "cookies in each, in one language, and the notice version in force: a visitor's choice made under "
    "another version is asked for again. Cacheable for five minutes.",
)
async def get_cookie_declaration(
    session: SessionDep, response: Response, lang: Annotated[Language, Query(description="Language.")] = "sv"
) -> CookieDeclaration:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return await service.cookie_declaration(session, lang)


async def _cookie_again(cookie_id: uuid.UUID, session: AsyncSession) -> CookieEntry:
    """A retried creation (same Idempotency-Key): the cookie the first one added."""
    return CookieEntry.model_validate(await service.get_cookie(session, cookie_id))


@router.post(
    "/cookies",
    status_code=201,
    response_model=CookieEntry,
    responses=problems(*AUTH, *BODY, 409),
    summary="Add a cookie to the declaration (admin)",
)
@created("/v1/cookies/{id}")
@idempotent(replay=_cookie_again)
async def create_cookie(body: CookieCreate, session: SessionDep, caller: Admin) -> CookieEntry:
    return CookieEntry.model_validate(await service.create_cookie(session, body, actor=caller))


@router.get(
    "/cookies/{cookie_id}",
    response_model=CookieEntry,
    responses=problems(404, 422),
    summary="One cookie of the declaration, in both languages (public)",
    description="Where an added cookie's `Location` points.",
)
async def get_cookie(cookie_id: uuid.UUID, session: SessionDep, response: Response) -> CookieEntry:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return CookieEntry.model_validate(await service.get_cookie(session, cookie_id))


@router.patch(
    "/cookies/{cookie_id}",
    response_model=CookieEntry,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Change a cookie in the declaration (admin)",
)
async def update_cookie(
    cookie_id: uuid.UUID, body: CookieUpdate, session: SessionDep, caller: Admin
) -> CookieEntry:
    return CookieEntry.model_validate(await service.update_cookie(session, cookie_id, body, actor=caller))


@router.delete(
    "/cookies/{cookie_id}",
    status_code=204,
    responses=problems(*AUTH, 404, 422),
    summary="Remove a cookie the website no longer sets (admin)",
)
async def delete_cookie(cookie_id: uuid.UUID, session: SessionDep, caller: Admin) -> Response:
    await service.delete_cookie(session, cookie_id, actor=caller)
    return Response(status_code=204)


@router.patch(
    "/cookie-categories/{code}",
    response_model=CookieCategoryEntry,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Change a cookie category's texts or purpose (admin)",
)
async def update_cookie_category(
    code: CookieCategoryCode, body: CookieCategoryUpdate, session: SessionDep, caller: Admin
) -> CookieCategoryEntry:
    return CookieCategoryEntry.model_validate(
        await service.update_cookie_category(session, code, body, actor=caller)
    )
