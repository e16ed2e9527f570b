"""The personal data breach register (GDPR Art. 33(5)): each breach, the subjects it affected (and whether
and when each was told, Art. 34), and the queries that found them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import JSONColumn, UTCDateTime


class Breach(SQLModel, table=True):
    __tablename__ = "breach"
    __table_args__ = (Index("ix_breach_status_due_at", "status", "due_at"),)

    id: uuid.UUID = Field(primary_key=True)
    title: str = Field(sa_type=String(200))
    description: str = Field(sa_type=SAText)
    status: str = Field(sa_type=String(20))  # open | assessed | notified | not_notified | closed
    reported_by: str = Field(sa_type=String(220))  # role:sub
    # The processor that reported it (Art. 33(2)); None when staff registered it.
    processor_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("processor.id"), nullable=True, index=True)
    )
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processor_aware_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the controller became aware; IMY is to be told within 72 hours of it (due_at), Art. 33(1).
    aware_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    data_categories: list[str] = Field(sa_type=JSONColumn)
    subject_categories: list[str] = Field(sa_type=JSONColumn)
    subjects_estimate: int | None = Field(default=None, sa_type=BigInteger)
    records_estimate: int | None = Field(default=None, sa_type=BigInteger)
    consequences: str | None = Field(default=None, sa_type=SAText)
    measures: str | None = Field(default=None, sa_type=SAText)
    # The assessment: the risk to people, and the two decisions with their reasons.
    risk: str | None = Field(default=None, sa_type=String(10))  # unlikely | risk | high
    notify_imy: bool | None = None
    imy_reason: str | None = Field(default=None, sa_type=SAText)
    notify_subjects: bool | None = None
    subjects_reason: str | None = Field(default=None, sa_type=SAText)
    subjects_exception: str | None = Field(default=None, sa_type=String(30))  # Art. 34(3) (a), (b) or (c)
    assessed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assessed_by: str | None = Field(default=None, sa_type=String(220))
    imy_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    imy_reference: str | None = Field(default=None, sa_type=String(100))
    imy_delay_reason: str | None = Field(default=None, sa_type=SAText)
    # What the affected subjects are told ({"consequences": {"sv", "en"}, "measures": ..., "advice": ...}).
    subject_notice: dict[str, Any] | None = Field(default=None, sa_type=JSONColumn)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    closed_by: str | None = Field(default=None, sa_type=String(220))
    closing_note: str | None = Field(default=None, sa_type=SAText)


class BreachQuery(SQLModel, table=True):
    """A search for the subjects a breach affected, as run: its criteria and what it found."""

    __tablename__ = "breach_query"

    id: uuid.UUID = Field(primary_key=True)
    breach_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("breach.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    criteria: dict[str, Any] = Field(sa_type=JSONColumn)
    ran_at: datetime = Field(sa_type=UTCDateTime)
    ran_by: str = Field(sa_type=String(220))
    matched: int
    linked: int


class BreachSubject(SQLModel, table=True):
    """A subject the breach affected, and its notification (Art. 34): pending → sent, or skipped (no address
    to write to). One row per subject and breach: nobody is mailed twice about one breach."""

    __tablename__ = "breach_subject"
    __table_args__ = (Index("ix_breach_subject_breach_id_notification", "breach_id", "notification"),)

    breach_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("breach.id", ondelete="CASCADE"), primary_key=True)
    )
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    added_at: datetime = Field(sa_type=UTCDateTime)
    added_by: str = Field(sa_type=String(220))
    query_id: uuid.UUID | None = Field(default=None)
    notification: str | None = Field(default=None, sa_type=String(10))  # pending | sent | skipped
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A sender's claim on a pending notification; one older than the lease is taken over.
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    language: str | None = Field(default=None, sa_type=String(2))  # sv | en; None: both
