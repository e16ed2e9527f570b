from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.webhooks import service
from app.webhooks.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
)

router = APIRouter(tags=["webhooks"])

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
    responses=problems(*AUTH, *BODY),
    summary="Subscribe an endpoint to events (admin)",
    description=SIGNING + " The secret is shown once.",
)
async def create_endpoint(body: EndpointCreate, session: SessionDep, caller: Admin) -> EndpointCreated:
    endpoint, secret = await service.create_endpoint(
        session, url=body.url, event_types=body.event_types, description=body.description, actor=caller
    )
    return EndpointCreated(**EndpointRead.model_validate(endpoint).model_dump(), secret=secret)


@router.get(
    "/webhook-endpoints",
    response_model=Page[EndpointRead],
    responses=problems(*AUTH, 422),
    summary="Webhook endpoints (admin)",
)
async def list_endpoints(
    session: SessionDep, _caller: Admin, limit: Limit = 50, cursor: Cursor = None
) -> Page[EndpointRead]:
    endpoints, next_cursor = await service.list_endpoints(session, limit=limit, cursor=cursor)
    return Page(items=[EndpointRead.model_validate(e) for e in endpoints], next_cursor=next_cursor)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=EndpointRead,
    responses=problems(*AUTH, 404, 422),
    summary="One webhook endpoint (admin)",
)
async def get_endpoint(endpoint_id: uuid.UUID, session: SessionDep, _caller: Admin) -> EndpointRead:
    return EndpointRead.model_validate(await service.get_endpoint(session, endpoint_id))


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
    summary="Webhook deliveries, newest first (admin)",
)
async def list_deliveries(
    session: SessionDep,
    _caller: Admin,
    endpoint_id: uuid.UUID | None = None,
    status: Annotated[
        Literal["pending", "sending", "delivered", "failed", "cancelled"] | None, Query()
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryRead]:
    deliveries, next_cursor = await service.list_deliveries(
        session, endpoint_id=endpoint_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=[DeliveryRead.model_validate(d) for d in deliveries], next_cursor=next_cursor)


@router.get(
    "/webhook-deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problems(*AUTH, 404, 422),
    summary="One delivery with every attempt (admin)",
)
async def get_delivery(delivery_id: uuid.UUID, session: SessionDep, _caller: Admin) -> DeliveryDetail:
    delivery, event_type, attempts = await service.get_delivery(session, delivery_id)
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        event_type=event_type,
        history=[AttemptRead.model_validate(a) for a in attempts],
    )
