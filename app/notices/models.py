"""Which privacy notice each subject was given, when and how (GDPR Art. 13 and 14), and who is owed one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import UTCDateTime


class NoticeDelivery(SQLModel, table=True):
    """One notice given to one subject: append-only evidence (Art. 5(2), accountability)."""

    __tablename__ = "notice_delivery"

    id: uuid.UUID = Field(primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id"), nullable=False, index=True)
    )
    version: str = Field(sa_column=Column(String(32), ForeignKey("policy_version.version"), nullable=False))
    language: str = Field(sa_type=String(2))
    # at_collection (Art. 13: given when the data was collected from the subject), first_contact, mail.
    method: str = Field(sa_type=String(20))
    delivered_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    recorded_by: str = Field(sa_type=String(200))


class NoticeDue(SQLModel, table=True):
    """A subject owed a notice: its data did not come from itself (Art. 14(3): within one month), or a notice
    version changed a section that concerns it. Deleted when the notice is given."""

    __tablename__ = "notice_due"

    subject_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("subject.id"), primary_key=True))
    # not_from_subject | notice_changed
    reason: str = Field(sa_type=String(20))
    # The version to give (notice_changed); null: the version in force when it is given.
    version: str | None = Field(
        default=None, sa_column=Column(String(32), ForeignKey("policy_version.version"), nullable=True)
    )
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
