"""OpenDSR v2 (formerly OpenGDPR): a second door into the rights-request workflow (app.rights_requests), for
a controller's data subject request system that speaks OpenDSR (docs/opendsr.md).

An OpenDSR request is a rights request of the same type (access, portability, erasure), filed as the privacy
center files for a person who proved their address (`rights_requests.file_unregistered`): matched to the
subject registered under the e-mail identity, or else to nobody (then completing it is the answer "no
personal data is held"). The rights request records its origin ("opendsr"), the sender's
`subject_request_id` and the webhook endpoint of each status callback URL. Staff work it in /v1 as any
other; every move is told to each callback URL through the signed webhooks (an event addressed to that one
endpoint, whose body is the OpenDSR callback object).

Responses and callbacks carry the OpenDSR headers: the processor domain (the host of PRIVACY_PUBLIC_BASE_URL)
and a signature, a compact JWS (ES256) by the receipt key, whose public half `/discovery` points at."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.auth.principals import Principal
from app.core.config import Settings
from app.core.contacts import normalize_email
from app.core.db import transaction
from app.core.errors import AppError, Conflict, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.time import rfc3339, utc_now
from app.opendsr.schemas import (
    API_VERSION,
    OpenDSRCancellation,
    OpenDSRDiscovery,
    OpenDSRIdentityFormat,
    OpenDSRIdentityType,
    OpenDSRRegulation,
    OpenDSRRequest,
    OpenDSRRequestCreated,
    OpenDSRRequestType,
    OpenDSRStatus,
    OpenDSRStatusRead,
    OpenDSRSupportedIdentity,
)
from app.rights_requests import service as rights
from app.rights_requests.schemas import Action, ReasonedAction, RequestCreate, RequestType
from app.rights_requests.schemas import RequestStatus as Status
from app.webhooks import service as outbox
from app.webhooks.schemas import EventType

ORIGIN = "opendsr"
CALLBACK_EVENT = EventType.opendsr_status_changed
SUPPORTED_IDENTITIES = [
    OpenDSRSupportedIdentity(
        identity_type=OpenDSRIdentityType.email, identity_format=OpenDSRIdentityFormat.raw
    )
]
STATUS_OF = {
    Status.received: OpenDSRStatus.pending,
    Status.verified: OpenDSRStatus.pending,
    Status.in_progress: OpenDSRStatus.in_progress,
    Status.completed: OpenDSRStatus.completed,
    Status.rejected: OpenDSRStatus.cancelled,
}
PENDING = frozenset({Status.received, Status.verified})
CANCELLED = "Cancelled by the controller through OpenDSR"
MAX_EMAIL = 320
# The response and callback headers (section 8.3), under both names: OpenGDPR's are still honoured (10.1).
DOMAIN_HEADERS = ("X-OpenDSR-Processor-Domain", "X-OpenGDPR-Processor-Domain")
SIGNATURE_HEADERS = ("X-OpenDSR-Signature", "X-OpenGDPR-Signature")


class BadRequest(AppError):
    """A request this service cannot take; the router answers it in the specification's error format."""

    status, title, slug = 400, "Not an OpenDSR request this service can take", "opendsr-bad-request"

    def __init__(self, message: str, *, reason: str = "IllegalArgumentException") -> None:
        super().__init__(message)
        self.reason = reason


class OpenDSRRequestNotFound(NotFound):
    title = "No OpenDSR request with this subject_request_id"


class AlreadyReceived(Conflict):
    title = "An OpenDSR request with this subject_request_id was already received"


class NotPending(Conflict):
    title = "Only a pending OpenDSR request can be cancelled"


def domain(settings: Settings) -> str:
    """The processor domain: the host clients reach this service at."""
    return urlsplit(settings.public_base_url).hostname or "localhost"


def _base(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/")


def discovery(settings: Settings) -> OpenDSRDiscovery:
    return OpenDSRDiscovery(
        api_version=API_VERSION,
        supported_identities=SUPPORTED_IDENTITIES,
        supported_subject_request_types=list(OpenDSRRequestType),
        processor_certificate=f"{_base(settings)}/v1/consent-receipts/jwks.json",
    )


def sign(session: AsyncSession, body: dict[str, Any]) -> str:
    """A compact JWS (ES256, the receipt key, its `kid` in the header) whose payload is `body`."""
    return runtime.of(session).keys.receipts.sign(body)


def headers(settings: Settings, signature: str | None) -> dict[str, str]:
    """The OpenDSR headers of a response or callback, under the OpenDSR and the OpenGDPR names."""
    found = dict.fromkeys(DOMAIN_HEADERS, domain(settings))
    if signature is not None:
        found |= dict.fromkeys(SIGNATURE_HEADERS, signature)
    return found


# --- filing
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vetted:
    """A request that may be filed: its body as received, what it says, and the address it is about."""

    raw: bytes
    data: OpenDSRRequest
    email: str


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


async def vet(session: AsyncSession, raw: bytes) -> Vetted:
    """Parse and check a request before anything is written: raises BadRequest (answered with the
    specification's 400). Each callback URL is vetted as a webhook endpoint's is (app.webhooks.urls)."""
    try:
        data = OpenDSRRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(_first_error(exc)) from None
    if data.subject_request_id.version != 4:
        raise BadRequest("subject_request_id: must be a UUID v4")
    if data.regulation == OpenDSRRegulation.ccpa:
        raise BadRequest("regulation: only gdpr is supported", reason="UnsupportedRegulation")
    emails = {
        normalize_email(identity.identity_value)
        for identity in data.subject_identities or []
        if identity.identity_type == OpenDSRIdentityType.email
        and identity.identity_format == OpenDSRIdentityFormat.raw
    }
    if not emails:
        raise BadRequest(
            "subject_identities: no identity this service supports (email, raw)", reason="UnsupportedIdentity"
        )
    if len(emails) > 1:
        raise BadRequest("subject_identities: one e-mail address per request", reason="AmbiguousIdentity")
    email = emails.pop()
    if "@" not in email or len(email) > MAX_EMAIL or any(c.isspace() or not c.isprintable() for c in email):
        raise BadRequest("subject_identities: not a valid e-mail address")
    settings = runtime.of(session).settings
    for index, url in enumerate(data.status_callback_urls or []):
        try:
            await outbox.check_url(url, settings, loc=["body", "status_callback_urls", index])
        except Unprocessable as exc:
            raise BadRequest(
                f"status_callback_urls.{index}: {exc.detail}", reason="UnsafeCallbackURL"
            ) from None
    return Vetted(raw, data, email)


def _controller(request: rights.RightsRequest) -> str:
    """The controller's id here: the API client (token subject) that sent the request."""
    return request.filed_by.partition(":")[2] or request.filed_by


async def file(
    session: AsyncSession, vetted: Vetted, *, caller: Principal
) -> tuple[OpenDSRRequestCreated, dict[str, str], list[Mail]]:
    """File the rights request (in one transaction, with a webhook endpoint for each callback URL and the
    first, `pending`, callback); the response, its headers and the mails to send once committed."""
    data = vetted.data
    external_id = str(data.subject_request_id)
    await transaction(session)
    if await rights.find_external(session, ORIGIN, external_id) is not None:
        raise AlreadyReceived(
            f"The request {external_id} was already received; its status is at GET /requests/"
        )
    callbacks = []
    for index, url in enumerate(dict.fromkeys(data.status_callback_urls or [])):
        endpoint_id = await outbox.callback_endpoint(
            session, url, CALLBACK_EVENT, actor=caller, loc=["body", "status_callback_urls", index]
        )
        callbacks.append({"url": url, "endpoint_id": str(endpoint_id)})
    regulation = data.regulation or OpenDSRRegulation.gdpr
    details = (
        f"Received through OpenDSR ({regulation}, request {external_id}); the data subject asked on "
        f"{rfc3339(data.submitted_time)}."
    )
    _filed, mails = await rights.file_unregistered(
        session,
        vetted.email,
        RequestCreate(type=RequestType(data.subject_request_type), details=details),
        caller=caller,
        origin=rights.Origin(ORIGIN, external_id, callbacks or None),
    )
    request = await rights.find_external(session, ORIGIN, external_id)
    assert request is not None
    await announce(session, request)
    body: dict[str, Any] = {
        "controller_id": _controller(request),
        "expected_completion_time": rfc3339(request.due_at),
        "received_time": rfc3339(request.received_at),
        "encoded_request": base64.b64encode(vetted.raw).decode(),
        "subject_request_id": external_id,
    }
    signature = sign(session, body)
    settings = runtime.of(session).settings
    return OpenDSRRequestCreated(**body, processor_signature=signature), headers(settings, signature), mails


# --- status and cancellation
# -------------------------------------------------------------------------------------


async def _find(session: AsyncSession, subject_request_id: uuid.UUID) -> rights.RightsRequest:
    request = await rights.find_external(session, ORIGIN, str(subject_request_id))
    if request is None:
        raise OpenDSRRequestNotFound("No OpenDSR request with this subject_request_id")
    return request


def _results_url(settings: Settings, request: rights.RightsRequest) -> str | None:
    """Where a completed access or portability request's package is (for a registered subject)."""
    if (
        request.status == Status.completed
        and request.subject_id is not None
        and request.type in (RequestType.access, RequestType.portability)
    ):
        return f"{_base(settings)}/v1/rights-requests/{request.id}/package"
    return None


def _status_body(settings: Settings, request: rights.RightsRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "controller_id": _controller(request),
        "expected_completion_time": rfc3339(request.due_at),
        "subject_request_id": request.external_id,
        "request_status": STATUS_OF[Status(request.status)],
        "api_version": API_VERSION,
    }
    if (results := _results_url(settings, request)) is not None:
        body["results_url"] = results
    return body


async def status(
    session: AsyncSession, subject_request_id: uuid.UUID
) -> tuple[OpenDSRStatusRead, dict[str, str]]:
    request = await _find(session, subject_request_id)
    settings = runtime.of(session).settings
    body = _status_body(settings, request)
    return OpenDSRStatusRead(**body), headers(settings, sign(session, body))


def _not_pending(status: str) -> NotPending:
    said = STATUS_OF.get(status, status)  # type: ignore[call-overload]  # a StrEnum key is its string
    return NotPending(f"The request is {said}; only a pending request can be cancelled")


async def cancel(
    session: AsyncSession, subject_request_id: uuid.UUID, *, caller: Principal
) -> tuple[OpenDSRCancellation, dict[str, str]]:
    """Cancel a pending request (section 9): the rights request is rejected with the reason that the
    controller cancelled it, and the callbacks say `cancelled`. Once work has started it cannot be (409). The
    data subject is not mailed: the controller that cancelled tells them."""
    request = await _find(session, subject_request_id)
    if request.status not in PENDING:
        raise _not_pending(request.status)
    moved, _mails = await rights.act(
        session, request.id, ReasonedAction(action=Action.reject, reason=CANCELLED), caller=caller
    )
    before = moved.history[-1].from_status  # read under the row's lock: staff may have started it meanwhile
    if before not in PENDING:
        raise _not_pending(before or "")  # the rejection is rolled back with the request
    body: dict[str, Any] = {
        "controller_id": _controller(request),
        "subject_request_id": request.external_id,
        "received_time": rfc3339(utc_now()),
        "api_version": API_VERSION,
    }
    signature = sign(session, body)
    settings = runtime.of(session).settings
    return OpenDSRCancellation(**body, processor_signature=signature), headers(settings, signature)


# --- callbacks
# -------------------------------------------------------------------------------------------------


async def announce(session: AsyncSession, request: rights.RightsRequest) -> None:
    """Tell each callback URL of an OpenDSR request its status (section 8.6), in the caller's transaction:
    one webhook event per URL, addressed to its endpoint, whose body is the callback object and whose headers
    are the OpenDSR ones (the signature is a JWS over the body, by the receipt key), besides the webhook
    signature every delivery carries."""
    if request.origin != ORIGIN or not request.status_callbacks:
        return
    settings = runtime.of(session).settings
    for callback in request.status_callbacks:
        body = _status_body(settings, request) | {"status_callback_url": callback["url"]}
        body.pop("api_version")
        payload = {
            "body": json.dumps(body, separators=(",", ":")),
            "headers": headers(settings, sign(session, body)),
        }
        await outbox.emit_callback(
            session,
            CALLBACK_EVENT,
            uuid.UUID(callback["endpoint_id"]),
            payload,
            subject_id=request.subject_id,
        )


rights.on_status_change(announce)
