"""The outbox: events for integrators, written in the same transaction as the change they announce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, Uuid, column
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import JSONColumn, UTCDateTime


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"
    # The dispatcher's queue (undispatched, oldest first): the only index besides the key, and one that holds
    # an event only until it is dispatched. Every change writes a row here: each index is paid on every write.
    __table_args__ = (
        Index(
            "ix_outbox_event_undispatched",
            "created_at",
            postgresql_where=column("dispatched_at").is_(None),
            sqlite_where=column("dispatched_at").is_(None),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(sa_type=String(60))
    subject_id: uuid.UUID | None = Field(default=None)
    payload: dict[str, Any] = Field(sa_type=JSONColumn)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    # Set once deliveries for the event have been planned (one per matching endpoint).
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookEndpoint(SQLModel, table=True):
    """A subscriber: a URL, the event types it wants, and the secret its deliveries are signed with (kept
    encrypted, since signing needs it back). A processor's endpoint receives only events addressed to it."""

    __tablename__ = "webhook_endpoint"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    url: str = Field(sa_type=String(2000))
    event_types: list[str] = Field(sa_type=JSONColumn)
    description: str | None = Field(default=None, sa_type=String(500))
    processor_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("processor.id"), nullable=True, index=True)
    )
    secret_ciphertext: bytes = Field(sa_type=LargeBinary)
    secret_key_id: str = Field(sa_type=String(40))
    # The secret in force before the last rotation, kept (encrypted the same way) so that deliveries carry its
    # signature beside the new one until `previous_secret_valid_until`: a receiver switches without a gap.
    previous_secret_ciphertext: bytes | None = Field(default=None, sa_type=LargeBinary)
    previous_secret_key_id: str | None = Field(default=None, sa_type=String(40))
    previous_secret_valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_reason: str | None = Field(default=None, sa_type=String(200))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint, tried until delivered, abandoned after about a day, or cancelled."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("outbox_event.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    endpoint_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    # pending → (sending) → delivered | failed | cancelled; `sending` holds a lease (the send's timeout plus a
    # margin, taken just before the send), so that a worker that dies mid-send leaves the delivery to be sent
    # again (at least once), never lost. The lease's owner (a random id per claim) is checked when the outcome
    # is recorded: a worker whose lease ran out and was taken over records its attempt, and changes nothing.
    status: str = Field(sa_type=String(12))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_owner: str | None = Field(default=None, sa_type=String(32))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    delivery_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid, ForeignKey("webhook_delivery.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_type=String(300))
    duration_ms: int = Field(default=0)
