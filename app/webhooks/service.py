"""The outbox and its subscribers: writers append events in their transaction; the worker plans one delivery
per matching endpoint (dispatch) and sends them (app.webhooks.delivery)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.db import InsertTemplate, Write, execute_write
from app.core.errors import NotFound, Unprocessable
from app.core.pagination import paginate
from app.core.security import Principal
from app.core.time import utc_now
from app.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.urls import UnsafeURL, resolve

_ANNOUNCE = InsertTemplate(OutboxEvent.__table__, "outbox")


def event_statement(event_type: str, payload: dict[str, Any], *, subject_id: uuid.UUID | None = None) -> Write:
    """The insert that announces a change, for callers that run it with their own writes."""
    return _ANNOUNCE({"id": uuid.uuid4(), "type": event_type, "subject_id": subject_id, "payload": payload,
                      "created_at": utc_now(), "dispatched_at": None})


async def emit(session: AsyncSession, event_type: str, payload: dict[str, Any], *,
               subject_id: uuid.UUID | None = None) -> None:
    await execute_write(session, event_statement(event_type, payload, subject_id=subject_id))


# --- endpoints -----------------------------------------------------------------------------------------------


class EndpointNotFound(NotFound):
    title = "Webhook endpoint not found"


def _secret_context(endpoint_id: uuid.UUID) -> bytes:
    return f"webhook_endpoint:{endpoint_id}".encode()


def endpoint_secret(keys: Keys, endpoint: WebhookEndpoint) -> str:
    return keys.cipher.decrypt(endpoint.secret_key_id, endpoint.secret_ciphertext, context=_secret_context(endpoint.id))


async def check_url(url: str, settings: Settings, *, loc: list[str | int]) -> None:
    try:
        await resolve(url, require_https=settings.env == "production",
                      allow_private=settings.webhook_allow_private_addresses)
    except UnsafeURL as exc:
        raise Unprocessable(f"Not a webhook URL we may call: {exc}", loc=loc) from None


async def create_endpoint(
    session: AsyncSession, keys: Keys, settings: Settings, *, url: str, event_types: Sequence[str],
    description: str | None = None, processor_id: uuid.UUID | None = None, actor: Principal,
    loc: tuple[str, ...] = ("body", "url"),
) -> tuple[WebhookEndpoint, str]:
    """Register a subscriber; returns it and its signing secret (`whsec_...`), which is shown once."""
    await check_url(url, settings, loc=list(loc))
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    endpoint = WebhookEndpoint(id=uuid.uuid4(), url=url, event_types=sorted(set(event_types)),
                               description=description, processor_id=processor_id, secret_ciphertext=b"",
                               secret_key_id="")
    endpoint.secret_key_id, endpoint.secret_ciphertext = keys.cipher.encrypt(secret, context=_secret_context(endpoint.id))
    session.add(endpoint)
    await session.flush()
    await audit.record(session, actor, "webhook_endpoint.created", target=str(endpoint.id))
    return endpoint, secret


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound("No webhook endpoint with this id")
    return endpoint


async def list_endpoints(session: AsyncSession, *, limit: int, cursor: str | None
                         ) -> tuple[Sequence[WebhookEndpoint], str | None]:
    return await paginate(session, select(WebhookEndpoint), order=(WebhookEndpoint.created_at, WebhookEndpoint.id),
                          limit=limit, cursor=cursor, key_type=uuid.UUID)


async def processor_endpoint_urls(session: AsyncSession, processor_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(WebhookEndpoint.processor_id, WebhookEndpoint.url).where(
        WebhookEndpoint.processor_id.in_(processor_ids), WebhookEndpoint.disabled_at.is_(None)))
    return {processor_id: url for processor_id, url in rows}


async def disable_endpoint(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """No more deliveries to it: pending ones are cancelled."""
    if endpoint.disabled_at is None:
        endpoint.disabled_at, endpoint.disabled_reason = utc_now(), reason
        await session.execute(update(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status.in_(("pending", "sending")))
            .values(status="cancelled", lease_until=None))
        await session.flush()


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, *, actor: Principal) -> None:
    endpoint = await get_endpoint(session, endpoint_id)
    await disable_endpoint(session, endpoint, "removed by an administrator")
    await audit.record(session, actor, "webhook_endpoint.disabled", target=str(endpoint.id))


# --- dispatch: one delivery per matching endpoint --------------------------------------------------------------


def _matches(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    if event.type not in endpoint.event_types or endpoint.created_at > event.created_at:
        return False  # subscribers get what happens after they subscribe
    return endpoint.processor_id is None or str(endpoint.processor_id) == event.payload.get("processor_id")


async def dispatch(session: AsyncSession, *, limit: int = 500) -> int:
    """Plan deliveries for events not yet dispatched. Several workers on PostgreSQL share the outbox: rows
    another worker holds are skipped, not waited for."""
    events = (await session.execute(
        select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)).order_by(OutboxEvent.created_at)
        .limit(limit).with_for_update(skip_locked=True))).scalars().all()
    if not events:
        return 0
    endpoints = (await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None)))).scalars().all()
    now = utc_now()
    for event in events:
        for endpoint in endpoints:
            if _matches(endpoint, event):
                session.add(WebhookDelivery(event_id=event.id, endpoint_id=endpoint.id, status="pending",
                                            next_attempt_at=now, created_at=now))
        event.dispatched_at = now
    await session.flush()
    return len(events)


# --- what admins see -------------------------------------------------------------------------------------------


async def list_deliveries(session: AsyncSession, *, endpoint_id: uuid.UUID | None, status: str | None, limit: int,
                          cursor: str | None) -> tuple[Sequence[WebhookDelivery], str | None]:
    statement = select(WebhookDelivery)
    if endpoint_id is not None:
        statement = statement.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return await paginate(session, statement, order=(WebhookDelivery.created_at, WebhookDelivery.id), limit=limit,
                          cursor=cursor, key_type=uuid.UUID)


async def get_delivery(session: AsyncSession, delivery_id: uuid.UUID
                       ) -> tuple[WebhookDelivery, str, Sequence[WebhookAttempt]]:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("No webhook delivery with this id")
    event = await session.get(OutboxEvent, delivery.event_id)
    attempts = (await session.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
                                      .order_by(WebhookAttempt.attempted_at))).scalars().all()
    return delivery, event.type if event else "", attempts

