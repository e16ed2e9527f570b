"""Consent: the append-only events (the evidence) and the current state per subject and purpose."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import UTCDateTime


class ConsentEvent(SQLModel, table=True):
    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_subject_id_occurred_at", "subject_id", "occurred_at"),)

    id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=False)
    )
    purpose: str = Field(sa_column=Column(String(64), ForeignKey("purpose.code"), nullable=False))
    status: str = Field(sa_type=String(20))
    channel: str = Field(sa_type=String(20))
    # explicit (the subject's own choice), gpc (Global Privacy Control), objection or erasure.
    method: str = Field(sa_type=String(20))
    policy_version: str = Field(
        sa_column=Column(String(32), ForeignKey("policy_version.version"), nullable=False)
    )
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(sa_type=String(200))
    evidence_ip: str | None = Field(default=None, sa_type=String(45))
    evidence_user_agent: str | None = Field(default=None, sa_type=String(1000))
    evidence_text_shown: str | None = Field(default=None, sa_type=SAText)
    # The device whose cookie choice this event carries over (visitors), if any.
    evidence_visitor_id: str | None = Field(default=None, sa_type=String(32))
    receipt: str = Field(sa_type=SAText)


class ConsentState(SQLModel, table=True):
    """The projection: per (subject, purpose), the latest event by occurred_at, kept in its transaction."""

    __tablename__ = "consent_state"

    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    )
    purpose: str = Field(sa_column=Column(String(64), ForeignKey("purpose.code"), primary_key=True))
    status: str = Field(sa_type=String(20))
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    policy_version: str = Field(sa_type=String(32))
    event_id: uuid.UUID
