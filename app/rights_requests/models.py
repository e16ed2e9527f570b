"""Rights requests (GDPR Art. 15-22) and the history of every move they make."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import JSONColumn, UTCDateTime


class RightsRequest(SQLModel, table=True):
    __tablename__ = "rights_request"
    __table_args__ = (
        Index("ix_rights_request_status_due_at", "status", "due_at"),
        CheckConstraint("subject_id IS NOT NULL OR requester_email IS NOT NULL", name="someone"),
        # A request that came through another door (OpenDSR) is found by the id its sender gave it.
        Index("ix_rights_request_origin_external_id", "origin", "external_id", unique=True),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # None: filed by a person who is not registered (requester_email says who), and matched to nobody.
    subject_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    requester_email: str | None = Field(default=None, sa_type=String(320))
    type: str = Field(sa_type=String(20))
    status: str = Field(sa_type=String(20))
    details: str | None = Field(default=None, sa_type=SAText)
    purpose: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("purpose.code"), nullable=True)
    )
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    extended: bool = Field(default=False)
    filed_by: str = Field(sa_type=String(220))
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rejection_reason: str | None = Field(default=None, sa_type=SAText)
    # Where the request came from when not through /v1 or the privacy center (None): "opendsr", with the
    # sender's own id for it (OpenDSR's subject_request_id) and where its status changes are to be announced
    # (a list of {"url", "endpoint_id"}: the webhook endpoint that delivers to each callback URL).
    origin: str | None = Field(default=None, sa_type=String(20))
    external_id: str | None = Field(default=None, sa_type=String(64))
    status_callbacks: list[dict[str, str]] | None = Field(default=None, sa_type=JSONColumn, nullable=True)


class RightsRequestEvent(SQLModel, table=True):
    __tablename__ = "rights_request_event"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid, ForeignKey("rights_request.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(sa_type=String(200))
    role: str = Field(sa_type=String(20))
    action: str = Field(sa_type=String(20))  # filed | verify | start | complete | reject | extend
    from_status: str | None = Field(default=None, sa_type=String(20))
    to_status: str = Field(sa_type=String(20))
    reason: str | None = Field(default=None, sa_type=SAText)
