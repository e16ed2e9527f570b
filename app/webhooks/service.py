"""The outbox and its subscribers: writers append events in their transaction; the worker plans one delivery
per matching endpoint (dispatch) and sends them (app.webhooks.delivery)."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.core.config import Settings
from app.core.crypto import FieldCipher
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.sql import Write, write
from app.core.sql.locks import lock_key, transaction_lock
from app.core.time import utc_now
from app.webhooks import repository
from app.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import DeliveryStatus, EndpointUpdate, EventType
from app.webhooks.urls import UnsafeURL, resolve


def announce(event_type: str, payload: dict[str, Any], *, subject_id: uuid.UUID | None = None) -> Write:
    """The outbox row announcing a change, for the caller to write with the change itself."""
    return repository.announcement(
        {
            "id": uuid.uuid4(),
            "type": event_type,
            "subject_id": subject_id,
            "payload": payload,
            "created_at": utc_now(),
            "dispatched_at": None,
        }
    )


async def emit(
    session: AsyncSession, event_type: str, payload: dict[str, Any], *, subject_id: uuid.UUID | None = None
) -> None:
    """Announce a change on its own (in the caller's transaction)."""
    await write(session, announce(event_type, payload, subject_id=subject_id))


# --- endpoints
# -----------------------------------------------------------------------------------------------


class EndpointNotFound(NotFound):
    title = "Webhook endpoint not found"


def _secret_context(endpoint_id: uuid.UUID) -> bytes:
    return f"webhook_endpoint:{endpoint_id}".encode()


def endpoint_secret(cipher: FieldCipher, endpoint: WebhookEndpoint) -> str:
    return cipher.decrypt(
        endpoint.secret_key_id, endpoint.secret_ciphertext, context=_secret_context(endpoint.id)
    )


def previous_secret(cipher: FieldCipher, endpoint: WebhookEndpoint, now: datetime) -> str | None:
    """The secret in force before the last rotation, while it still signs (see rotate_secret); else None."""
    if (
        endpoint.previous_secret_ciphertext is None
        or endpoint.previous_secret_key_id is None
        or endpoint.previous_secret_valid_until is None
        or endpoint.previous_secret_valid_until <= now
    ):
        return None
    return cipher.decrypt(
        endpoint.previous_secret_key_id,
        endpoint.previous_secret_ciphertext,
        context=_secret_context(endpoint.id),
    )


async def check_url(url: str, settings: Settings, *, loc: list[str | int]) -> None:
    try:
        await resolve(
            url,
            require_https=settings.env == "production",
            allow_private=settings.webhook_allow_private_addresses,
        )
    except UnsafeURL as exc:
        raise Unprocessable(f"Not a webhook URL we may call: {exc}", loc=loc) from None


def _new_secret(session: AsyncSession, endpoint_id: uuid.UUID) -> tuple[str, str, bytes]:
    """A fresh signing secret (`whsec_` + 32 random bytes), and its key id and ciphertext as stored."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    key_id, ciphertext = runtime.of(session).keys.cipher.encrypt(secret, context=_secret_context(endpoint_id))
    return secret, key_id, ciphertext


async def create_endpoint(
    session: AsyncSession,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None = None,
    processor_id: uuid.UUID | None = None,
    actor: Principal,
    loc: tuple[str, ...] = ("body", "url"),
) -> tuple[WebhookEndpoint, str]:
    """Register a subscriber; returns it and its signing secret (`whsec_...`), which is shown once."""
    context = runtime.of(session)
    await check_url(url, context.settings, loc=list(loc))
    await transaction(session)
    endpoint_id = uuid.uuid4()
    secret, key_id, ciphertext = _new_secret(session, endpoint_id)
    await repository.insert_endpoint(
        session,
        {
            "id": endpoint_id,
            "url": url,
            "event_types": sorted(set(event_types)),
            "description": description,
            "processor_id": processor_id,
            "secret_ciphertext": ciphertext,
            "secret_key_id": key_id,
            "previous_secret_ciphertext": None,
            "previous_secret_key_id": None,
            "previous_secret_valid_until": None,
            "created_at": utc_now(),
            "disabled_at": None,
            "disabled_reason": None,
        },
    )
    await audit.record(session, actor, "webhook_endpoint.created", target=str(endpoint_id))
    return await get_endpoint(session, endpoint_id), secret


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, caller: Principal | None = None
) -> WebhookEndpoint:
    """An endpoint the caller may manage: an admin any, a processor its own (another's does not exist)."""
    endpoint = await repository.get_endpoint(session, endpoint_id)
    if endpoint is None or (
        caller is not None and caller.role == Role.processor and endpoint.processor_id != caller.processor_id
    ):
        raise EndpointNotFound("No webhook endpoint with this id")
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, caller: Principal, limit: int, cursor: str | None
) -> tuple[Sequence[WebhookEndpoint], str | None]:
    return await repository.list_endpoints(
        session, processor_id=caller.processor_id, limit=limit, cursor=cursor
    )


# What a processor's endpoint may subscribe to: its own tasks (other events never reach it anyway, see
# _matches).
PROCESSOR_EVENTS = frozenset({EventType.processor_task_created, EventType.processor_task_completed})


def _only_processor_events(event_types: Sequence[str]) -> None:
    if not set(event_types) <= PROCESSOR_EVENTS:
        raise Unprocessable(
            "A processor's endpoint receives only its task events: " + ", ".join(sorted(PROCESSOR_EVENTS)),
            loc=["body", "event_types"],
        )


async def _no_other_active_endpoint(session: AsyncSession, processor_id: uuid.UUID) -> None:
    """A processor has one active endpoint at most (its tasks go there), checked under a lock on the processor
    so that two requests at once cannot both pass; in the caller's transaction."""
    await transaction_lock(session, lock_key("processor-endpoint", str(processor_id)))
    active = await repository.active_processor_endpoint(session, processor_id)
    if active is not None:
        raise Conflict(
            f"The processor already has an active webhook endpoint ({active}): change it with "
            "PATCH /v1/webhook-endpoints/{id}, or disable it first"
        )


async def create_own_endpoint(
    session: AsyncSession,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    caller: Principal,
) -> tuple[WebhookEndpoint, str]:
    """A processor's endpoint for its own tasks, when it has no active one (else a 409)."""
    assert caller.processor_id is not None
    _only_processor_events(event_types)
    await transaction(session)
    await _no_other_active_endpoint(session, caller.processor_id)
    return await create_endpoint(
        session,
        url=url,
        event_types=event_types,
        description=description,
        processor_id=caller.processor_id,
        actor=caller,
    )


async def update_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, data: EndpointUpdate, *, caller: Principal
) -> WebhookEndpoint:
    """Change where an endpoint's deliveries go and what it receives, or disable it or enable it again (an
    admin, or the processor it is for). A null URL, event list or `enabled` changes nothing; a null
    description removes it."""
    endpoint = await get_endpoint(session, endpoint_id, caller=caller)
    changes: dict[str, Any] = {
        k: v
        for k, v in data.model_dump(exclude_unset=True, exclude={"enabled"}).items()
        if v is not None or k == "description"
    }
    if data.event_types is not None:
        if endpoint.processor_id is not None:
            _only_processor_events(data.event_types)
        changes["event_types"] = sorted(set(data.event_types))
    enabling = data.enabled is True and endpoint.disabled_at is not None
    disabling = data.enabled is False and endpoint.disabled_at is None
    if data.url is not None or enabling:  # a URL that comes into use is vetted as on creation
        await check_url(
            data.url or endpoint.url,
            runtime.of(session).settings,
            loc=["body", "url" if data.url is not None else "enabled"],
        )
    await transaction(session)
    if enabling and endpoint.processor_id is not None:
        await _no_other_active_endpoint(session, endpoint.processor_id)
    if changes:
        await repository.update_endpoint(session, endpoint.id, **changes)
        await audit.record(session, caller, "webhook_endpoint.updated", target=str(endpoint.id))
    if enabling:
        await repository.update_endpoint(session, endpoint.id, disabled_at=None, disabled_reason=None)
        await audit.record(session, caller, "webhook_endpoint.enabled", target=str(endpoint.id))
    elif disabling:
        by = "its owner" if caller.role == Role.processor else "an administrator"
        await disable_endpoint(session, endpoint, f"disabled by {by}")
        await audit.record(session, caller, "webhook_endpoint.disabled", target=str(endpoint.id))
    return await get_endpoint(session, endpoint.id)


# How long the secret a rotation replaces goes on signing deliveries beside the new one (Standard Webhooks
# allows several signatures in `webhook-signature`): the receiver's time to switch without losing any.
SECRET_OVERLAP = timedelta(hours=24)


async def rotate_secret(
    session: AsyncSession, endpoint_id: uuid.UUID, *, caller: Principal
) -> tuple[str, datetime]:
    """A new signing secret, in force for every delivery from now on; the one it replaces (the secret in force
    until now, also during an earlier overlap) signs beside it for SECRET_OVERLAP. Returns the new secret and
    until when the old one still signs."""
    endpoint = await get_endpoint(session, endpoint_id, caller=caller)
    await transaction(session)
    secret, key_id, ciphertext = _new_secret(session, endpoint.id)
    valid_until = utc_now() + SECRET_OVERLAP
    await repository.rotate_secret(session, endpoint.id, key_id, ciphertext, valid_until)
    await audit.record(session, caller, "webhook_endpoint.secret_rotated", target=str(endpoint.id))
    return secret, valid_until


async def processor_endpoint_urls(
    session: AsyncSession, processor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return await repository.processor_endpoint_urls(session, processor_ids)


async def disable_endpoint(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    """No more deliveries to it: pending ones are cancelled."""
    await transaction(session)
    if endpoint.disabled_at is None:
        await repository.disable_endpoint(session, endpoint.id, utc_now(), reason)


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, *, actor: Principal) -> None:
    await transaction(session)
    endpoint = await get_endpoint(session, endpoint_id)
    await disable_endpoint(session, endpoint, "removed by an administrator")
    await audit.record(session, actor, "webhook_endpoint.disabled", target=str(endpoint.id))


# --- callbacks: events addressed to one URL (OpenDSR's status_callback_urls)
# ------------------------------------------

# The payload member that addresses an event to one endpoint only.
ADDRESSEE = "callback_endpoint_id"


async def callback_endpoint(
    session: AsyncSession, url: str, event_type: str, *, actor: Principal, loc: list[str | int]
) -> uuid.UUID:
    """The endpoint that delivers `event_type` callbacks to `url`: an active one an admin registered for this
    URL and event type (whose secret its receiver knows), else a new one, vetted like any endpoint
    (app.webhooks.urls). Its signing secret is then known to nobody until an admin rotates it."""
    for endpoint in await repository.active_endpoints_at(session, url):
        if event_type in endpoint.event_types:
            return endpoint.id
    endpoint, _secret = await create_endpoint(
        session,
        url=url,
        event_types=[event_type],
        description=f"{event_type} callbacks",
        actor=actor,
        loc=tuple(str(part) for part in loc),
    )
    return endpoint.id


async def emit_callback(
    session: AsyncSession,
    event_type: str,
    endpoint_id: uuid.UUID,
    payload: dict[str, Any],
    *,
    subject_id: uuid.UUID | None,
) -> None:
    """An event for one endpoint only (see callback_endpoint), in the caller's transaction."""
    await emit(session, event_type, {ADDRESSEE: str(endpoint_id), **payload}, subject_id=subject_id)


# --- dispatch: one delivery per matching endpoint
# --------------------------------------------------------------


def _matches(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    if event.type not in endpoint.event_types or endpoint.created_at > event.created_at:
        return False  # subscribers get what happens after they subscribe
    if (addressee := event.payload.get(ADDRESSEE)) is not None:  # one endpoint's alone (a callback)
        return bool(str(endpoint.id) == addressee)
    return endpoint.processor_id is None or str(endpoint.processor_id) == event.payload.get("processor_id")


async def dispatch(session: AsyncSession, *, limit: int = 500) -> int:
    """Plan deliveries for events not yet dispatched, in the caller's transaction. Several workers on
    PostgreSQL
    share the outbox: rows another worker holds are skipped, not waited for."""
    events = await repository.undispatched(session, limit)
    if not events:
        return 0
    endpoints = await repository.active_endpoints(session)
    now = utc_now()
    deliveries = [
        {
            "id": uuid.uuid4(),
            "event_id": event.id,
            "endpoint_id": endpoint.id,
            "status": DeliveryStatus.pending,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "lease_owner": None,
            "created_at": now,
            "delivered_at": None,
        }
        for event in events
        for endpoint in endpoints
        if _matches(endpoint, event)
    ]
    await repository.plan(session, deliveries, [event.id for event in events], now)
    return len(events)


# --- what admins see
# -------------------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    *,
    caller: Principal,
    endpoint_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[WebhookDelivery], str | None]:
    """An admin's: all; a processor's: those to its own endpoints."""
    return await repository.list_deliveries(
        session,
        endpoint_id=endpoint_id,
        processor_id=caller.processor_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )


async def _reach_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, caller: Principal
) -> WebhookDelivery:
    delivery = await repository.get_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound("No webhook delivery with this id")
    try:
        await get_endpoint(session, delivery.endpoint_id, caller=caller)
    except EndpointNotFound:
        raise NotFound("No webhook delivery with this id") from None
    return delivery


async def get_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, *, caller: Principal
) -> tuple[WebhookDelivery, str, Sequence[WebhookAttempt]]:
    delivery = await _reach_delivery(session, delivery_id, caller)
    event = await repository.get_event(session, delivery.event_id)
    return delivery, event.type if event else "", await repository.attempts_of(session, delivery.id)


async def redeliver(session: AsyncSession, delivery_id: uuid.UUID, *, caller: Principal) -> WebhookDelivery:
    """Send a delivery again, whatever became of it: due now, with a fresh round of retries. It keeps its
    `webhook-id`, so a receiver that already processed it can tell (Standard Webhooks)."""
    delivery = await _reach_delivery(session, delivery_id, caller)
    endpoint = await get_endpoint(session, delivery.endpoint_id)
    if endpoint.disabled_at is not None:
        raise Conflict("The endpoint is disabled; nothing can be delivered to it")
    await transaction(session)
    await repository.update_delivery(
        session,
        delivery.id,
        status=DeliveryStatus.pending,
        attempts=0,
        next_attempt_at=utc_now(),
        lease_until=None,
        lease_owner=None,
    )
    await audit.record(session, caller, "webhook_delivery.redelivered", target=str(delivery.id))
    redelivered = await repository.get_delivery(session, delivery.id)
    assert redelivered is not None
    return redelivered


# --- what the delivery worker records (app.webhooks.delivery sends)
# --------------------------------------------


async def endpoints_due(
    session: AsyncSession, *, limit: int, besides: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """The endpoints with deliveries due now, besides these, the longest waiting first."""
    return await repository.endpoints_due(session, utc_now(), limit, besides)


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to one worker's claim (`owner`), with what it sends, where, and the secret (and the
    previous one, while a rotation's overlap lasts)."""

    delivery_id: uuid.UUID
    owner: str
    endpoint: WebhookEndpoint
    event: OutboxEvent
    secret: str
    previous_secret: str | None = None


# Claims lost to other workers before a claim gives up for now (each loss is a delivery another worker took).
_CLAIM_TRIES = 5


async def claim_next(session: AsyncSession, endpoint_id: uuid.UUID, *, lease: timedelta) -> Claimed | None:
    """Lease an endpoint's next due delivery to a new owner until `lease` from now, in the caller's
    transaction; None when nothing is due. A delivery with nothing to send (its event gone, or its endpoint
    disabled meanwhile) is cancelled and the next one taken."""
    for _ in range(_CLAIM_TRIES):
        now = utc_now()
        delivery_id = await repository.next_due(session, endpoint_id, now)
        if delivery_id is None:
            return None
        owner = secrets.token_hex(16)
        if not await repository.claim(session, delivery_id, now, now + lease, owner):
            continue  # another worker took it between the two statements
        delivery = await repository.get_delivery(session, delivery_id)
        endpoint = await repository.get_endpoint(session, endpoint_id)
        event = await repository.get_event(session, delivery.event_id) if delivery else None
        if delivery is None or endpoint is None or event is None or endpoint.disabled_at is not None:
            await repository.update_delivery(
                session, delivery_id, status=DeliveryStatus.cancelled, lease_until=None, lease_owner=None
            )
            continue
        cipher = runtime.of(session).keys.cipher
        secret, previous = endpoint_secret(cipher, endpoint), previous_secret(cipher, endpoint, now)
        return Claimed(delivery_id, owner, endpoint, event, secret, previous)
    return None


async def record_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    *,
    owner: str,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    retry_in: Callable[[int], timedelta | None],
) -> DeliveryStatus | None:
    """The outcome of one attempt, in the caller's transaction. Every attempt is recorded. Its outcome decides
    the delivery's course only while `owner` still holds the lease: delivered on a 2xx, failed (and the
    endpoint disabled) on a 410, else tried again after `retry_in(attempts)` or given up. None: it no longer
    held it (the lease ran out and another worker took the delivery over, or it was cancelled or sent again
    meanwhile), and the attempt is history only."""
    delivery = await repository.get_delivery(session, delivery_id, lock=True)
    if delivery is None:
        return None
    await repository.insert_attempt(
        session,
        {
            "id": uuid.uuid4(),
            "delivery_id": delivery.id,
            "attempted_at": attempted_at,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        },
    )
    if delivery.status != DeliveryStatus.sending or delivery.lease_owner != owner:
        return None
    attempts = delivery.attempts + 1
    changes: dict[str, Any] = {"attempts": attempts, "lease_until": None, "lease_owner": None}
    if status_code is not None and 200 <= status_code < 300:
        changes |= {"status": DeliveryStatus.delivered, "delivered_at": utc_now()}
    elif status_code == 410:
        changes["status"] = DeliveryStatus.failed
        endpoint = await repository.get_endpoint(session, delivery.endpoint_id)
        if endpoint is not None:
            await disable_endpoint(session, endpoint, "the receiver answered 410 Gone")
    else:
        delay = retry_in(attempts)
        changes |= (
            {"status": DeliveryStatus.failed}
            if delay is None
            else {"status": DeliveryStatus.pending, "next_attempt_at": utc_now() + delay}
        )
    await repository.update_delivery(session, delivery.id, **changes)
    status: DeliveryStatus = changes["status"]
    return status
