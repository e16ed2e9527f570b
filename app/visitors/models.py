"""Website visitors' cookie choices: the append-only events (the evidence) and each visitor's current
state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Uuid, column
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import JSONColumn, UTCDateTime


class Visitor(SQLModel, table=True):
    """A device, by the opaque id the service issued it, with its current choices (the projection of its
    latest event, `event_id`, which holds the receipt) and, once its owner logged in with it, the subject it
    is linked to."""

    __tablename__ = "visitor"
    # Only linked devices are indexed by subject: a first visit's write touches no index but the key.
    __table_args__ = (
        Index(
            "ix_visitor_linked_subject_id",
            "subject_id",
            postgresql_where=column("subject_id").isnot(None),
            sqlite_where=column("subject_id").isnot(None),
        ),
    )

    id: str = Field(sa_type=String(32), primary_key=True)
    subject_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="SET NULL"), nullable=True)
    )
    choices: dict[str, bool] = Field(sa_type=JSONColumn)
    gpc: bool
    method: str = Field(sa_type=String(20))
    notice_version: str = Field(sa_type=String(32))
    language: str = Field(sa_type=String(2))
    event_id: uuid.UUID
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class VisitorConsentEvent(SQLModel, table=True):
    """One choice, as made: what was allowed, under which notice and wording, where, and from which network
    (the address truncated to /24 or /48: enough to show the choice came from a browser, not who it was)."""

    __tablename__ = "visitor_consent_event"
    __table_args__ = (
        Index("ix_visitor_consent_event_visitor_id_recorded_at", "visitor_id", "recorded_at"),
        # The retention sweep's range; events arrive in time order, so a BRIN index (PostgreSQL) costs a write
        # next to nothing.
        Index("ix_visitor_consent_event_recorded_at", "recorded_at", postgresql_using="brin"),
    )

    id: uuid.UUID = Field(primary_key=True)
    visitor_id: str = Field(
        sa_column=Column(String(32), ForeignKey("visitor.id", ondelete="CASCADE"), nullable=False)
    )
    choices: dict[str, bool] = Field(sa_type=JSONColumn)
    gpc: bool
    # explicit (the visitor's own choice), gpc (Global Privacy Control refused what it covers), or subject
    # (the linked subject's newer consent, say withdrawn in the CRM, applied to the device).
    method: str = Field(sa_type=String(20))
    notice_version: str = Field(
        sa_column=Column(String(32), ForeignKey("policy_version.version"), nullable=False)
    )
    language: str = Field(sa_type=String(2))
    text_shown: str | None = Field(default=None, sa_type=SAText)
    page_url: str | None = Field(default=None, sa_type=String(2000))
    user_agent: str | None = Field(default=None, sa_type=String(1000))
    network: str | None = Field(default=None, sa_type=String(49))
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    receipt: str = Field(sa_type=SAText)
