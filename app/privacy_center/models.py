"""The privacy center's sessions, kept server-side so that signing out really ends one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import UTCDateTime


class CenterSession(SQLModel, table=True):
    """A signed-in subject, or a person who proved an address (the form for people who are not registered).
    The browser holds a random token; only its SHA-256 is stored."""

    __tablename__ = "center_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    subject_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=True)
    )
    # The address a person without an account proved by a code; None for a signed-in subject.
    email: str | None = Field(default=None, sa_type=String(320))
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
