"""Objections (GDPR Art. 21) upheld for a subject and a purpose: the decision path reads them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import UTCDateTime


class Objection(SQLModel, table=True):
    __tablename__ = "objection"

    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True)
    )
    purpose: str = Field(sa_column=Column(String(64), ForeignKey("purpose.code"), primary_key=True))
    upheld_at: datetime = Field(sa_type=UTCDateTime)
    upheld_by: str = Field(sa_type=String(200))
