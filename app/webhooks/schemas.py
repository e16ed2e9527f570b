from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Text500, UTCTimestamp


class EventType(StrEnum):
    consent_granted = "consent.granted"
    consent_withdrawn = "consent.withdrawn"
    marketing_opted_out = "marketing.opted_out"
    marketing_allowed = "marketing.allowed"
    processor_task_created = "processor_task.created"
    processor_task_completed = "processor_task.completed"
    rights_request_received = "rights_request.received"
    rights_request_verified = "rights_request.verified"
    rights_request_started = "rights_request.started"
    rights_request_completed = "rights_request.completed"
    rights_request_rejected = "rights_request.rejected"
    rights_request_extended = "rights_request.extended"
    subject_erased = "subject.erased"
    subject_anonymized = "subject.anonymized"
    subject_restricted = "subject.restricted"
    subject_restriction_lifted = "subject.restriction_lifted"
    breach_reported = "breach.reported"
    breach_updated = "breach.updated"
    notice_published = "notice.published"
    # OpenDSR status callbacks: each event is addressed to one endpoint (its callback URL), and its body is
    # the OpenDSR callback object itself (docs/opendsr.md).
    opendsr_status_changed = "opendsr.status_changed"


class DeliveryStatus(StrEnum):
    """pending → (sending) → delivered | failed | cancelled; `sending` holds a lease."""

    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    failed = "failed"  # given up, or the receiver answered 410
    cancelled = "cancelled"  # the endpoint was disabled


WebhookURL = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        examples=["https://crm.wesafe.se/hooks/privacy"],
        description="https in production; never a loopback, link-local or private address.",
    ),
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.wesafe.se/hooks/privacy",
                    "event_types": ["consent.granted", "consent.withdrawn", "marketing.opted_out"],
                    "description": "CRM: keep marketing lists in step",
                }
            ]
        },
    )

    url: WebhookURL
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: Text500 | None = None


class EndpointUpdate(BaseModel):
    """What to change; what is left out stays."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/wesafe",
                    "event_types": ["processor_task.created", "processor_task.completed"],
                }
            ]
        },
    )

    url: WebhookURL | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EventType))
    description: Text500 | None = None
    enabled: bool | None = Field(
        default=None,
        description="`false` disables the endpoint (its pending deliveries are cancelled); `true` enables a "
        "disabled one again (its URL is checked as on creation). Deliveries cancelled meanwhile stay "
        "cancelled.",
    )


class SecretRotated(BaseModel):
    secret: str = Field(
        description="The new `whsec_...` signing secret, shown once. It signs every delivery from now on."
    )
    previous_secret_valid_until: UTCTimestamp = Field(
        description="Until when the secret this one replaced still signs deliveries too (24 hours from now): "
        "`webhook-signature` then carries both signatures, the new one first, so a receiver may switch to "
        "the new secret at any time before this without losing a delivery."
    )


class EndpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[EventType]
    description: str | None
    processor_id: uuid.UUID | None = Field(
        description=(
            "Set for a processor's own endpoint, which receives only the events addressed to that processor."
        )
    )
    created_at: UTCTimestamp
    disabled_at: UTCTimestamp | None
    disabled_reason: str | None


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="`whsec_...`: verifies the `webhook-signature` header (Standard Webhooks). Shown once."
    )


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: UTCTimestamp
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    status: str = Field(
        description="pending, sending, delivered, failed (given up) or cancelled (endpoint gone)."
    )
    attempts: int
    next_attempt_at: UTCTimestamp
    created_at: UTCTimestamp
    delivered_at: UTCTimestamp | None


class DeliveryDetail(DeliveryRead):
    event_type: str
    history: list[AttemptRead]
