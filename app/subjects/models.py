"""Data subjects and the register of personal data held on them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import UTCDateTime
from app.subjects.schemas import SubjectStatus


class Subject(SQLModel, table=True):
    __tablename__ = "subject"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str | None = Field(default=None, sa_type=String(254))
    # Keyed hash of the normalized address: case-insensitive lookup and uniqueness on an index.
    email_hash: str | None = Field(default=None, sa_type=String(64), unique=True)
    # Kept after an erasure only while the law keeps some of the subject's items, and only so that the person
    # can still sign in to the privacy center and see what is kept and why (Art. 15); never searched by staff.
    access_email_hash: str | None = Field(default=None, sa_type=String(64), index=True)
    name: str | None = Field(default=None, sa_type=String(200))
    external_ref: str | None = Field(default=None, sa_type=String(100), index=True)
    status: str = Field(default=SubjectStatus.active, sa_type=String(20))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    relationship_ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set by the retention sweep when nothing but anonymized data was left: nothing here identifies anyone.
    anonymized_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PersonalDataItem(SQLModel, table=True):
    __tablename__ = "personal_data_item"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    category: str = Field(sa_type=String(30))
    source: str = Field(sa_type=String(30))
    purpose: str = Field(sa_column=Column(String(64), ForeignKey("purpose.code"), nullable=False))
    # Plain for ordinary categories; for sensitive ones NULL, with the AES-GCM ciphertext and its key id.
    value: str | None = Field(default=None, sa_type=SAText)
    ciphertext: bytes | None = Field(default=None, sa_type=LargeBinary)
    key_id: str | None = Field(default=None, sa_type=String(40))
    collected_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    # Set when the subject was erased but the law obliges us to keep the item (bookkeeping), until when and
    # why.
    retained_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retention_reason: str | None = Field(default=None, sa_type=SAText)
    # Anonymized by retention: no value, collection month only; counts per purpose, category and month remain.
    anonymized_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SubjectContact(SQLModel, table=True):
    """Keyed hashes of the subject's e-mail addresses and phone numbers: how a contact in a marketing check
    is found to be a subject. The subject's own address has no item; the others come from data items.

    A contact counts as the subject's own for marketing only once verified (docs/security.md, "Marketing
    contacts and opt-outs"): anyone can type an address into their own register."""

    __tablename__ = "subject_contact"

    contact_hash: str = Field(sa_type=String(64), primary_key=True)
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True, index=True)
    )
    kind: str = Field(sa_type=String(10))  # email | phone
    item_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            Uuid, ForeignKey("personal_data_item.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    # When and how the subject was shown to hold the contact; None: not verified. `registration` (the address
    # staff registered it with), `login` (a login code sent to it), `code` (a verification code sent to it),
    # `staff` (with `verified_reason`, kept here rather than in the audit trail, which outlives erasure).
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verified_by: str | None = Field(default=None, sa_type=String(20))
    verified_reason: str | None = Field(default=None, sa_type=String(200))
