"""Website visitors' cookie choices (public, called by the banner from the website's origin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response

from app.core.db import SessionDep
from app.core.openapi import BODY, problems
from app.core.ratelimit import client_address
from app.core.responses import created
from app.visitors import service
from app.visitors.schemas import CategoryChoices, VisitorConsentCreate, VisitorConsentRead

router = APIRouter(tags=["visitor-consents"])

GPC_HELP = (
    "Global Privacy Control: `1` records `analytics` and `marketing` (the categories whose purpose honours "
    "GPC) as refused, with method `gpc`, whatever the choices say."
)


_SERIALIZER = VisitorConsentRead.__pydantic_serializer__


def _read(state: dict[str, Any]) -> VisitorConsentRead:
    return VisitorConsentRead(
        visitor_id=state["id"],
        choices=CategoryChoices(**state["choices"]),
        gpc=state["gpc"],
        method=state["method"],
        notice_version=state["notice_version"],
        language=state["language"],
        recorded_at=state["recorded_at"],
        expires_at=state["expires_at"],
        receipt=state["receipt"],
    )


@router.post(
    "/visitor-consents",
    status_code=201,
    response_model=VisitorConsentRead,
    responses=problems(*BODY, 404, 429),
    summary="Record a website visitor's cookie choice (public)",
    description="For visitors who are not (yet) known subjects: the banner sends each choice, with the "
    "wording shown and the page. The service stores it as evidence (with the address truncated to /24 or "
    "/48 and the user agent) and answers with the visitor id to keep, the choices for every category "
    "(`necessary` always allowed; a category left out is refused), and a signed receipt. Without a "
    "`visitor_id`, or with one the service did not issue or whose choice expired, a new id is issued. "
    "A choice is valid for 12 months. Rate-limited per client address (429 with `Retry-After`).",
)
@created("/v1/visitor-consents/{visitor_id}", own_response=True)
async def record_visitor_consent(
    body: VisitorConsentCreate,
    request: Request,
    session: SessionDep,
    sec_gpc: Annotated[str | None, Header(alias="Sec-GPC", max_length=10, description=GPC_HELP)] = None,
    user_agent: Annotated[str | None, Header(max_length=4000, include_in_schema=False)] = None,
) -> Response:
    request.app.state.runtime.visitor_limit.check(request)
    state = await service.record(
        session, body, gpc=sec_gpc == "1", address=client_address(request), user_agent=user_agent
    )
    # Serialized here, once: FastAPI would validate the model it was just built from again (the highest-
    # volume write; bench/README.md). The route's response_model documents the same body.
    return Response(
        _SERIALIZER.to_json(_read(state)),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/v1/visitor-consents/{state['id']}"},
    )


@router.get(
    "/visitor-consents/{visitor_id}",
    response_model=VisitorConsentRead,
    responses=problems(404, 422),
    summary="A visitor's current cookie choices (public)",
    description="What the banner asks on each page: the choices in force for this device, or 404 when the "
    "id is unknown or its choice has expired (the banner then asks again). For a device linked to a "
    "subject, the subject's newer consents (say, withdrawn in the CRM) are applied first.",
)
async def get_visitor_consent(
    visitor_id: Annotated[str, Path(max_length=64)], session: SessionDep
) -> VisitorConsentRead:
    return _read(await service.current(session, visitor_id))
