from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.mail import Mail, Mailer
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.core.types import Text2000
from app.idempotency.deps import idempotent
from app.rights_requests import package as packages
from app.rights_requests import service
from app.rights_requests.package import Package
from app.rights_requests.schemas import (
    ActionRequest,
    PackageFormat,
    RequestCreate,
    RequestRead,
    RequestStatus,
    RequestType,
)
from app.subjects.schemas import SubjectRead

router = APIRouter(tags=["rights-requests"])

Filer = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.requests_manage))]
Reader = Annotated[Principal, Depends(require({Role.subject, Role.staff}, Scope.requests_read))]
Manager = Annotated[Principal, Depends(require(Role.staff, Scope.requests_manage))]


def _send(background: BackgroundTasks, mailer: Mailer, mails: list[Mail]) -> None:
    for mail in mails:  # run after the commit: nobody is told of a change that did not happen
        background.add_task(mailer.send, mail)


async def _request_again(key: str, session: AsyncSession, caller: Principal) -> RequestRead:
    """A retried filing (same Idempotency-Key): the request the first one filed."""
    return await service.read(session, uuid.UUID(key), caller=caller)


@router.post(
    "/rights-requests",
    status_code=201,
    response_model=RequestRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="File a rights request",
    description="Staff file for any subject; a subject files for itself (`subject_id` may be left out). "
    "`due_at` is one calendar month after receipt (GDPR Art. 12(3)). An objection names its "
    "`purpose`. The subject is told by e-mail.",
)
@created("/v1/rights-requests/{id}")
@idempotent(replay=_request_again)
async def file_request(
    body: RequestCreate, session: SessionDep, caller: Filer, background: BackgroundTasks
) -> RequestRead:
    request, mails = await service.file(session, body, caller=caller)
    _send(background, runtime.of(session).mailer, mails)
    return request


@router.get(
    "/rights-requests",
    response_model=Page[RequestRead],
    responses=problems(*AUTH, 422),
    summary="Rights requests (staff: all; a subject: its own)",
)
async def list_requests(
    session: SessionDep,
    caller: Reader,
    status: RequestStatus | None = None,
    type: Annotated[RequestType | None, Query(description="Request type.")] = None,  # noqa: A002 - the API's name
    overdue: Annotated[
        bool | None, Query(description="Open and past `due_at` (true) or not (false).")
    ] = None,
    due_within_days: Annotated[
        int | None, Query(ge=0, le=366, description="Open and due within N days.")
    ] = None,
    unmatched: Annotated[
        bool | None,
        Query(
            description="Filed by a person who is not registered and matched to no subject (true), or "
            "matched to a subject (false). A subject sees only its own requests."
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RequestRead]:
    requests, next_cursor = await service.list_requests(
        session,
        caller=caller,
        status=status,
        type_=type,
        overdue=overdue,
        due_within_days=due_within_days,
        limit=limit,
        cursor=cursor,
        unmatched=unmatched,
    )
    return Page(items=requests, next_cursor=next_cursor)


@router.get(
    "/rights-requests/{request_id}",
    response_model=RequestRead,
    responses=problems(*AUTH, 404, 422),
    summary="One rights request, with its history",
)
async def get_request(request_id: uuid.UUID, session: SessionDep, caller: Reader) -> RequestRead:
    return await service.read(session, request_id, caller=caller)


@router.post(
    "/rights-requests/{request_id}/actions",
    response_model=RequestRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Move a request on",
    description="`verify` (received → verified), `start` (verified → in_progress), `complete` "
    "(in_progress → completed, carrying the request out: erasure erases, restriction restricts, "
    "objection upholds it, rectification notifies the recipients), `reject` (any open state, "
    "reason required), `extend` (once, reason required, before the first deadline: two "
    "further months). Anything else is a 409. On a request matched to no subject (`subject_id` null), "
    "`complete` is the answer that no personal data is held about the person: nothing is carried out, "
    "and the requester is told so at `requester_email`.",
)
async def act(
    request_id: uuid.UUID,
    body: Annotated[ActionRequest, Body()],
    session: SessionDep,
    caller: Manager,
    background: BackgroundTasks,
) -> RequestRead:
    request, mails = await service.act(session, request_id, body, caller=caller)
    _send(background, runtime.of(session).mailer, mails)
    return request


PACKAGE = (
    "Everything held on the subject (GDPR Art. 15 and 20), built from the current data at each download, "
    "which is audited. Sensitive values are masked as everywhere else. A request matched to no subject has "
    "none (409: no personal data is held about that person)."
)
PACKAGE_PROBLEMS = problems(*AUTH, 404, 409, 422)


async def _download(
    session: AsyncSession, request_id: uuid.UUID, caller: Principal, fmt: PackageFormat
) -> Response:
    built = await service.package(session, request_id, caller=caller)
    body, media_type, headers = packages.download(built, fmt)
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/rights-requests/{request_id}/package",
    response_model=Package,
    responses=PACKAGE_PROBLEMS,
    summary="The register extract of a completed access or portability request (JSON)",
    description=PACKAGE + " The same extract as a zip of CSV files: `.../package.zip`; as a page: "
    "`.../package.html`.",
)
async def download_package(
    request_id: uuid.UUID,
    session: SessionDep,
    caller: Reader,
    # Kept for the links made before each format had its own operation (docs/behaviour.md).
    format: Annotated[PackageFormat, Query(include_in_schema=False)] = "json",  # noqa: A002 - the API's name
) -> Response:
    return await _download(session, request_id, caller, format)


@router.get(
    "/rights-requests/{request_id}/package.zip",
    response_class=Response,
    responses=PACKAGE_PROBLEMS
    | {
        200: {
            "description": "A zip archive with one CSV file per part of the extract.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="The register extract as a zip of CSV files",
    description=PACKAGE,
)
async def download_package_zip(request_id: uuid.UUID, session: SessionDep, caller: Reader) -> Response:
    return await _download(session, request_id, caller, "csv")


@router.get(
    "/rights-requests/{request_id}/package.html",
    response_class=Response,
    responses=PACKAGE_PROBLEMS
    | {
        200: {
            "description": "The extract as one HTML page, in Swedish and English.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
    summary="The register extract as a page to read or print",
    description=PACKAGE,
)
async def download_package_html(request_id: uuid.UUID, session: SessionDep, caller: Reader) -> Response:
    return await _download(session, request_id, caller, "html")


class LiftRestriction(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "The disputed address has been verified and corrected."}]},
    )

    reason: Text2000


@router.post(
    "/subjects/{subject_id}/lift-restriction",
    response_model=SubjectRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Lift a restriction of processing",
    description="An explicit, recorded staff decision (GDPR Art. 18(3)): the subject's processing is no "
    "longer restricted.",
)
async def lift_restriction(
    subject_id: uuid.UUID, body: LiftRestriction, session: SessionDep, caller: Manager
) -> SubjectRead:
    return SubjectRead.model_validate(
        await service.lift_restriction(session, subject_id, body.reason, actor=caller)
    )
