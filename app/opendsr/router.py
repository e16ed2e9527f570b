"""OpenDSR v2, mounted at /opendsr/v2 (app.main): discovery, requests, status, cancellation; the OpenGDPR
route names (`/opengdpr_requests`) are served too, as the specification asks (section 10.1)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse

from app import runtime
from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.openapi import AUTH, problems
from app.core.responses import created
from app.opendsr import service
from app.opendsr.schemas import (
    SPEC_REQUEST,
    OpenDSRCancellation,
    OpenDSRDiscovery,
    OpenDSRError,
    OpenDSRRequest,
    OpenDSRRequestCreated,
    OpenDSRStatusRead,
)

PREFIX = "/opendsr/v2"
router = APIRouter(tags=["opendsr"])

# The controller's DSR system: a staff API client. Filing and cancelling need requests:manage, as in /v1.
Sender = Annotated[Principal, Depends(require(Role.staff, Scope.requests_manage))]
Reader = Annotated[Principal, Depends(require(Role.staff, Scope.requests_read))]

_SIGNED = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in (
        ("X-OpenDSR-Processor-Domain", "This service's domain (also sent as X-OpenGDPR-Processor-Domain)."),
        (
            "X-OpenDSR-Signature",
            "A compact JWS (ES256) over the body, by the key `processor_certificate` points at (also sent as "
            "X-OpenGDPR-Signature).",
        ),
    )
}
_SPEC_ERROR: dict[int | str, dict[str, Any]] = {
    400: {
        "model": OpenDSRError,
        "description": "Not a request this service can take, in the specification's error format (7.6): "
        "malformed, an unsupported regulation or identity, a callback URL we may not call",
    }
}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` put in place (the request body is read raw, for
    `encoded_request`, so FastAPI does not document it)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _inline(OpenDSRRequest.model_json_schema()),
                "examples": {
                    "erasure": {"summary": "The specification's example (7.2)", "value": SPEC_REQUEST},
                    "opengdpr": {
                        "summary": "An OpenGDPR 0.1 request: no regulation, a top-level property_id",
                        "value": {
                            k: v for k, v in SPEC_REQUEST.items() if k not in ("extensions", "api_version")
                        }
                        | {"subject_request_type": "access", "property_id": "123456"},
                    },
                },
            }
        },
    }
}


@router.get(
    "/discovery",
    response_model=OpenDSRDiscovery,
    responses=problems(*AUTH),
    summary="What this service supports of OpenDSR",
    description="Section 6. The identities it matches (e-mail, raw), the request types (access, portability, "
    "erasure) and where the key that signs its responses and callbacks is published.",
)
async def discovery(session: SessionDep, _caller: Reader, response: Response) -> OpenDSRDiscovery:
    settings = runtime.of(session).settings
    response.headers.update(service.headers(settings, None))
    return service.discovery(settings)


async def create_request(
    request: Request, session: SessionDep, caller: Sender, background: BackgroundTasks, response: Response
) -> OpenDSRRequestCreated | JSONResponse:
    try:
        vetted = await service.vet(session, await request.body())
    except service.BadRequest as exc:
        error = {
            "code": 400,
            "message": exc.detail,
            "errors": [{"domain": "Validation", "reason": exc.reason, "message": exc.detail}],
        }
        return JSONResponse({"error": error}, status_code=400, headers={"Cache-Control": "no-store"})
    created_request, headers, mails = await service.file(session, vetted, caller=caller)
    mailer = runtime.of(session).mailer
    for mail in mails:  # after the commit: nobody is told of a request that was not filed
        background.add_task(mailer.send, mail)
    response.headers.update(headers)
    response.headers["Location"] = f"{PREFIX}/requests/{created_request.subject_request_id}"
    return created_request


async def request_status(
    subject_request_id: uuid.UUID, session: SessionDep, _caller: Reader, response: Response
) -> OpenDSRStatusRead:
    status, headers = await service.status(session, subject_request_id)
    response.headers.update(headers)
    return status


async def cancel_request(
    subject_request_id: uuid.UUID, session: SessionDep, caller: Sender, response: Response
) -> OpenDSRCancellation:
    cancelled, headers = await service.cancel(session, subject_request_id, caller=caller)
    response.headers.update(headers)
    return cancelled


_CREATE = created(PREFIX + "/requests/{subject_request_id}", own_response=True)(create_request)

for collection, suffix, legacy in (("/requests", "", False), ("/opengdpr_requests", "_opengdpr", True)):
    named = " (OpenGDPR route name)" if legacy else ""
    router.add_api_route(
        collection,
        _CREATE,
        methods=["POST"],
        name="create_request" + suffix,
        status_code=201,
        response_model=OpenDSRRequestCreated,
        responses={
            201: {
                "description": "Received and filed. Signed: `X-OpenDSR-Processor-Domain` and "
                "`X-OpenDSR-Signature` (also under the X-OpenGDPR- names), besides `Location`.",
                "headers": _SIGNED,
            },
            **_SPEC_ERROR,
            **problems(*AUTH, 409, 413),
        },
        summary="Receive an OpenDSR request" + named,
        description="Section 7. Files a rights request of the same type for the subject registered under the "
        "e-mail identity, or, if none is, for that address matched to no subject (docs/opendsr.md). "
        "`expected_completion_time` is the statutory deadline. The subject is mailed that it was received. "
        "Each `status_callback_urls` entry is told of every status change through the signed webhooks. A "
        "`subject_request_id` already received: 409.",
        openapi_extra=_REQUEST_BODY,
        deprecated=legacy,
    )
    router.add_api_route(
        collection + "/{subject_request_id}",
        request_status,
        methods=["GET"],
        name="request_status" + suffix,
        response_model=OpenDSRStatusRead,
        response_model_exclude_none=True,  # the body is what was signed: no results_url until there is one
        responses={200: {"headers": _SIGNED}, **problems(*AUTH, 404, 422)},
        summary="The status of an OpenDSR request" + named,
        description="Section 8: pending (received or verified), in_progress, completed, or cancelled "
        "(cancelled, or rejected by staff). A completed access or portability request has a `results_url`.",
        deprecated=legacy,
    )
    router.add_api_route(
        collection + "/{subject_request_id}",
        cancel_request,
        methods=["DELETE"],
        name="cancel_request" + suffix,
        status_code=202,
        response_model=OpenDSRCancellation,
        responses={202: {"headers": _SIGNED}, **problems(*AUTH, 404, 409, 422)},
        summary="Cancel a pending OpenDSR request" + named,
        description="Section 9. Only while pending: once staff have started it, 409. The rights request is "
        "closed as rejected, with the reason that the controller cancelled it; callbacks say `cancelled`.",
        deprecated=legacy,
    )
