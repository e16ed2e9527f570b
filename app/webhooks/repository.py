"""The outbox, webhook endpoints, deliveries and their attempts: the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import sql
from app.core.sql import Insert, Write
from app.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import DeliveryStatus

_OUTBOX, _ENDPOINTS = sql.table_of(OutboxEvent), sql.table_of(WebhookEndpoint)
_DELIVERIES, _ATTEMPTS = sql.table_of(WebhookDelivery), sql.table_of(WebhookAttempt)

_ANNOUNCE = Insert(_OUTBOX, "outbox")
_INSERT_ENDPOINT = Insert(_ENDPOINTS, "endpoint")
_INSERT_ATTEMPT = Insert(_ATTEMPTS, "attempt")
_OPEN = (DeliveryStatus.pending, DeliveryStatus.sending)


def announcement(values: dict[str, Any]) -> Write:
    """The outbox row of an event, for the caller to write with the change it announces."""
    return _ANNOUNCE(values)


# --- endpoints
# -------------------------------------------------------------------------------------------------


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_ENDPOINT(values))


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id, populate_existing=True)


async def list_endpoints(
    session: AsyncSession, *, processor_id: uuid.UUID | None, limit: int, cursor: str | None
) -> tuple[Sequence[WebhookEndpoint], str | None]:
    """All endpoints, or a processor's own."""
    return await sql.paginate(
        session,
        sql.where_given(select(WebhookEndpoint), (WebhookEndpoint.processor_id, processor_id)),
        order=(WebhookEndpoint.created_at, WebhookEndpoint.id),
        limit=limit,
        cursor=cursor,
    )


async def update_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_ENDPOINTS).where(_ENDPOINTS.c.id == endpoint_id).values(**changes))


async def rotate_secret(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    key_id: str,
    ciphertext: bytes,
    previous_valid_until: datetime,
) -> None:
    """The new secret in force; the one in force until now kept as the previous, until the given time. In one
    statement, so that two rotations at once each keep the secret they replaced (never one lost between)."""
    c = _ENDPOINTS.c
    statement = (
        update(_ENDPOINTS)
        .where(c.id == endpoint_id)
        .values(
            previous_secret_ciphertext=c.secret_ciphertext,
            previous_secret_key_id=c.secret_key_id,
            previous_secret_valid_until=previous_valid_until,
            secret_ciphertext=ciphertext,
            secret_key_id=key_id,
        )
    )
    await sql.modify(session, statement)


async def active_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    statement = select(WebhookEndpoint).where(col(WebhookEndpoint.disabled_at).is_(None))
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def active_endpoints_at(session: AsyncSession, url: str) -> Sequence[WebhookEndpoint]:
    """The controller's (not a processor's) active endpoints with exactly this URL, the oldest first."""
    statement = (
        select(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.url) == url,
            col(WebhookEndpoint.processor_id).is_(None),
            col(WebhookEndpoint.disabled_at).is_(None),
        )
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def processor_endpoint_urls(
    session: AsyncSession, processor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(_ENDPOINTS.c.processor_id, _ENDPOINTS.c.url).where(
            _ENDPOINTS.c.processor_id.in_(processor_ids), _ENDPOINTS.c.disabled_at.is_(None)
        )
    )
    return dict(rows.all())


async def active_processor_endpoint(session: AsyncSession, processor_id: uuid.UUID) -> uuid.UUID | None:
    """The processor's active endpoint, if it has one."""
    statement = select(_ENDPOINTS.c.id).where(
        _ENDPOINTS.c.processor_id == processor_id, _ENDPOINTS.c.disabled_at.is_(None)
    )
    found: uuid.UUID | None = (await session.execute(statement.limit(1))).scalar_one_or_none()
    return found


async def disable_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, at: datetime, reason: str) -> None:
    """No more deliveries to it: it is disabled and its open deliveries cancelled."""
    await sql.modify(
        session,
        update(_ENDPOINTS)
        .where(_ENDPOINTS.c.id == endpoint_id)
        .values(disabled_at=at, disabled_reason=reason),
    )
    await sql.modify(
        session,
        update(_DELIVERIES)
        .where(_DELIVERIES.c.endpoint_id == endpoint_id, _DELIVERIES.c.status.in_(_OPEN))
        .values(status=DeliveryStatus.cancelled, lease_until=None, lease_owner=None),
    )


# --- the outbox and deliveries
# ---------------------------------------------------------------------------------


async def undispatched(session: AsyncSession, limit: int) -> Sequence[OutboxEvent]:
    """Events not yet planned for delivery, oldest first, locked; rows another worker holds are skipped."""
    statement = (
        select(OutboxEvent)
        .where(col(OutboxEvent.dispatched_at).is_(None))
        .order_by(col(OutboxEvent.created_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(statement)).scalars().all()


async def plan(
    session: AsyncSession, deliveries: list[dict[str, Any]], event_ids: list[uuid.UUID], at: datetime
) -> None:
    """The deliveries planned for these events, which are then dispatched."""
    if deliveries:
        await sql.execute(session, _DELIVERIES.insert(), deliveries)
    await sql.modify(
        session,
        update(_OUTBOX)
        .where(sql.among(sql.dialect_of(session), _OUTBOX.c.id, "ids", event_ids))
        .values(dispatched_at=at),
    )


def _due(now: datetime) -> Any:
    """Due: pending and its time has come, or sending with a lease that ran out (its worker died)."""
    return or_(
        (_DELIVERIES.c.status == DeliveryStatus.pending) & (_DELIVERIES.c.next_attempt_at <= now),
        (_DELIVERIES.c.status == DeliveryStatus.sending) & (_DELIVERIES.c.lease_until < now),
    )


async def endpoints_due(
    session: AsyncSession, now: datetime, limit: int, besides: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """The endpoints with deliveries due, besides these (being served already), the longest waiting first."""
    statement = select(_DELIVERIES.c.endpoint_id).where(_due(now))
    if besides:
        statement = statement.where(_DELIVERIES.c.endpoint_id.not_in(besides))
    rows = await session.execute(
        statement.group_by(_DELIVERIES.c.endpoint_id)
        .order_by(func.min(_DELIVERIES.c.next_attempt_at))
        .limit(limit)
    )
    return list(rows.scalars().all())


async def next_due(session: AsyncSession, endpoint_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
    """An endpoint's delivery due first (rows another worker is claiming are skipped, not waited for)."""
    return await session.scalar(
        select(_DELIVERIES.c.id)
        .where(_DELIVERIES.c.endpoint_id == endpoint_id, _due(now))
        .order_by(_DELIVERIES.c.next_attempt_at, _DELIVERIES.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


async def claim(
    session: AsyncSession, delivery_id: uuid.UUID, now: datetime, lease_until: datetime, owner: str
) -> bool:
    """Lease a delivery to `owner` if it is still due (compare and set: of two workers, one wins)."""
    changed = await sql.modify(
        session,
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == delivery_id, _due(now))
        .values(status=DeliveryStatus.sending, lease_until=lease_until, lease_owner=owner),
    )
    return changed == 1


async def get_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, *, lock: bool = False
) -> WebhookDelivery | None:
    return await session.get(
        WebhookDelivery, delivery_id, populate_existing=True, with_for_update=lock or None
    )


async def get_event(session: AsyncSession, event_id: uuid.UUID) -> OutboxEvent | None:
    return await session.get(OutboxEvent, event_id)


async def update_delivery(session: AsyncSession, delivery_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_DELIVERIES).where(_DELIVERIES.c.id == delivery_id).values(**changes))


async def insert_attempt(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_ATTEMPT(values))


async def list_deliveries(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID | None,
    processor_id: uuid.UUID | None = None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[WebhookDelivery], str | None]:
    """Deliveries (to one endpoint, or to a processor's endpoints only)."""
    statement = sql.where_given(
        select(WebhookDelivery), (WebhookDelivery.endpoint_id, endpoint_id), (WebhookDelivery.status, status)
    )
    if processor_id is not None:
        statement = statement.where(
            col(WebhookDelivery.endpoint_id).in_(
                select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.processor_id) == processor_id)
            )
        )
    return await sql.paginate(
        session,
        statement,
        order=(WebhookDelivery.created_at, WebhookDelivery.id),
        limit=limit,
        cursor=cursor,
    )


async def attempts_of(session: AsyncSession, delivery_id: uuid.UUID) -> Sequence[WebhookAttempt]:
    return (
        (
            await session.execute(
                select(WebhookAttempt)
                .where(col(WebhookAttempt.delivery_id) == delivery_id)
                .order_by(col(WebhookAttempt.attempted_at))
            )
        )
        .scalars()
        .all()
    )
