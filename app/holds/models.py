"""Legal holds: a subject whose data must be kept for legal claims (GDPR Art. 17(3)(e))."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import UTCDateTime


class LegalHold(SQLModel, table=True):
    __tablename__ = "legal_hold"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    reason: str = Field(sa_type=SAText)
    placed_at: datetime = Field(sa_type=UTCDateTime, index=True)
    placed_by: str = Field(sa_type=String(200))
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, sa_type=String(200))
    lift_reason: str | None = Field(default=None, sa_type=SAText)
