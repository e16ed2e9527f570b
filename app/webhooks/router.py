from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.auth.deps import Admin, require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.webhooks import service
from app.webhooks.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    SecretRotated,
)

router = APIRouter(tags=["webhooks"])
# An admin manages every endpoint; a processor its own (its task webhooks): another's is a 404.
Owner = Annotated[Principal, Depends(require({Role.processor, Role.staff}, Scope.admin))]

SIGNING = (
    "Deliveries follow the Standard Webhooks specification: headers `webhook-id`, `webhook-timestamp` and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the endpoint's "
    '`whsec_` secret), body `{"type", "timestamp", "data"}`. Retries with backoff over about a day; '
    "a 410 answer disables the endpoint; `Retry-After` is honoured."
)


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    responses=problems(*AUTH, *BODY, 409),
    summary="Subscribe an endpoint to events (admin, or a processor for its own tasks)",
    description=SIGNING + " The secret is shown once. A processor creates its own endpoint, for its task "
    "events only (`processor_task.created`, `processor_task.completed`, else 422), when it has no active "
    "one: one active already is a 409 (change it with PATCH, or disable it first).",
)
@created("/v1/webhook-endpoints/{id}")
async def create_endpoint(body: EndpointCreate, session: SessionDep, caller: Owner) -> EndpointCreated:
    if caller.role == Role.processor:
        endpoint, secret = await service.create_own_endpoint(
            session, url=body.url, event_types=body.event_types, description=body.description, caller=caller
        )
    else:
        endpoint, secret = await service.create_endpoint(
            session, url=body.url, event_types=body.event_types, description=body.description, actor=caller
        )
    return EndpointCreated(**EndpointRead.model_validate(endpoint).model_dump(), secret=secret)


@router.get(
    "/webhook-endpoints",
    response_model=Page[EndpointRead],
    responses=problems(*AUTH, 422),
    summary="Webhook endpoints (admin: all; a processor: its own)",
)
async def list_endpoints(
    session: SessionDep, caller: Owner, limit: Limit = 50, cursor: Cursor = None
) -> Page[EndpointRead]:
    endpoints, next_cursor = await service.list_endpoints(session, caller=caller, limit=limit, cursor=cursor)
    return Page(items=[EndpointRead.model_validate(e) for e in endpoints], next_cursor=next_cursor)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=EndpointRead,
    responses=problems(*AUTH, 404, 422),
    summary="One webhook endpoint (admin, or the processor it is for)",
)
async def get_endpoint(endpoint_id: uuid.UUID, session: SessionDep, caller: Owner) -> EndpointRead:
    return EndpointRead.model_validate(await service.get_endpoint(session, endpoint_id, caller=caller))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=EndpointRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Change an endpoint's URL, event types or description, or disable it or enable it again (admin, "
    "or the processor it is for)",
    description="A processor's endpoint receives only its task events (`processor_task.created`, "
    "`processor_task.completed`). The URL is checked as on creation. `enabled: false` disables the endpoint "
    "and cancels its pending deliveries; `enabled: true` enables a disabled one again (after a 410 from the "
    "receiver or a `DELETE`), its URL checked again (422 if it may no longer be called). A processor's "
    "endpoint is enabled only if the processor has no other active one (else 409). Deliveries cancelled "
    "while it was disabled stay cancelled, and events the worker handled meanwhile are not planned for it: "
    "send a cancelled delivery again with `POST /v1/webhook-deliveries/{id}/redeliver`, or read the tasks "
    "from `GET /v1/processor-tasks`.",
)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointUpdate, session: SessionDep, caller: Owner
) -> EndpointRead:
    return EndpointRead.model_validate(
        await service.update_endpoint(session, endpoint_id, body, caller=caller)
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    responses=problems(*AUTH, 404, 422),
    summary="Replace an endpoint's signing secret (admin, or the processor it is for)",
    description=(
        "The new secret is in this response only and signs every delivery from now on. The secret it "
        "replaces (the one in force until now) goes on signing for 24 hours, until "
        "`previous_secret_valid_until`: meanwhile `webhook-signature` carries two space-separated "
        "signatures, the new secret's first (Standard Webhooks receivers accept a delivery if any one "
        "matches), so the receiver can switch secrets without losing a delivery. Rotating again within the "
        "24 hours keeps only the secret being replaced: at most two signatures. Not idempotent by design: a "
        "retry rotates again (the last answer holds the secret)."
    ),
)
async def rotate_secret(endpoint_id: uuid.UUID, session: SessionDep, caller: Owner) -> SecretRotated:
    secret, valid_until = await service.rotate_secret(session, endpoint_id, caller=caller)
    return SecretRotated(secret=secret, previous_secret_valid_until=valid_until)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=problems(*AUTH, 404, 422),
    summary="Unsubscribe an endpoint (admin)",
    description="It is disabled and its pending deliveries are cancelled; its history stays visible.",
)
async def delete_endpoint(endpoint_id: uuid.UUID, session: SessionDep, caller: Admin) -> Response:
    await service.delete_endpoint(session, endpoint_id, actor=caller)
    return Response(status_code=204)


@router.get(
    "/webhook-deliveries",
    response_model=Page[DeliveryRead],
    responses=problems(*AUTH, 422),
    summary="Webhook deliveries, newest first (admin: all; a processor: to its own endpoints)",
)
async def list_deliveries(
    session: SessionDep,
    caller: Owner,
    endpoint_id: uuid.UUID | None = None,
    status: Annotated[
        Literal["pending", "sending", "delivered", "failed", "cancelled"] | None, Query()
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryRead]:
    deliveries, next_cursor = await service.list_deliveries(
        session, caller=caller, endpoint_id=endpoint_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=[DeliveryRead.model_validate(d) for d in deliveries], next_cursor=next_cursor)


@router.get(
    "/webhook-deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problems(*AUTH, 404, 422),
    summary="One delivery with every attempt (admin, or the processor it went to)",
)
async def get_delivery(delivery_id: uuid.UUID, session: SessionDep, caller: Owner) -> DeliveryDetail:
    delivery, event_type, attempts = await service.get_delivery(session, delivery_id, caller=caller)
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        event_type=event_type,
        history=[AttemptRead.model_validate(a) for a in attempts],
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryRead,
    responses=problems(*AUTH, 404, 409, 422),
    summary="Send a delivery again (admin, or the processor it went to)",
    description="Due at once, with a fresh round of retries, whatever its status was. It keeps its "
    "`webhook-id`, so a receiver that already processed it can recognise it. A disabled endpoint: 409.",
)
async def redeliver(delivery_id: uuid.UUID, session: SessionDep, caller: Owner) -> DeliveryRead:
    return DeliveryRead.model_validate(await service.redeliver(session, delivery_id, caller=caller))
