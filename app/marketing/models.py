"""Marketing: a subject's channel preferences, and opt-outs by contact kept only as keyed hashes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint, Uuid
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import UTCDateTime


class MarketingPreference(SQLModel, table=True):
    __tablename__ = "marketing_preference"

    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    )
    channel: str = Field(sa_type=String(10), primary_key=True)
    state: str = Field(sa_type=String(20))
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ContactOptOut(SQLModel, table=True):
    """An opt-out for a contact (an e-mail address or phone number), subject or not. Only the HMAC of the
    normalized contact is kept, so the opt-out outlives the erasure of whoever the contact belonged to."""

    __tablename__ = "contact_opt_out"
    __table_args__ = (
        UniqueConstraint("contact_hash", "channel", name="uq_contact_opt_out_contact_hash_channel"),
    )

    id: uuid.UUID = Field(primary_key=True)
    contact_hash: str = Field(sa_type=String(64))
    kind: str = Field(sa_type=String(10))  # email | phone
    channel: str = Field(sa_type=String(10))  # email | sms | phone | post | all
    source: str = Field(sa_type=String(20))  # staff | subject | unsubscribe_link | objection | erasure
    created_at: datetime = Field(sa_type=UTCDateTime)
