"""The disclosure log: who received which of a subject's data, when, for what. Append-only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Uuid, false
from sqlmodel import Column, Field, SQLModel, String

from app.core.types import JSONColumn, UTCDateTime


class Disclosure(SQLModel, table=True):
    __tablename__ = "disclosure"
    __table_args__ = (
        Index("ix_disclosure_subject_id_disclosed_at", "subject_id", "disclosed_at"),
        Index("ix_disclosure_flagged_recorded_at", "flagged", "recorded_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=False)
    )
    recipient_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("processor.id"), nullable=False, index=True)
    )
    categories: list[str] = Field(sa_type=JSONColumn)
    purpose: str = Field(sa_column=Column(String(64), ForeignKey("purpose.code"), nullable=False))
    disclosed_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    reported_by: str = Field(sa_type=String(220))  # role:sub of the reporter
    # Recorded, but against a rule (docs/behaviour.md, "Disclosures are checked"): the log is evidence, so a
    # report of what happened is kept, flagged with why (schemas.DisclosureFlag), never refused.
    flagged: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    flags: list[str] | None = Field(default=None, sa_type=JSONColumn)
