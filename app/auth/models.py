"""API clients: machine callers that exchange credentials for tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Uuid
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import JSONColumn, UTCDateTime


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_type=String(200))
    role: str = Field(sa_type=String(20))
    scopes: list[str] = Field(default_factory=list, sa_type=JSONColumn)
    processor_id: uuid.UUID | None = Field(default=None)
    secret_hash: str = Field(sa_type=String(64))
    created_by: str = Field(sa_type=String(200))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginCode(SQLModel, table=True):
    """A one-time code sent to an address: kept only as a keyed hash, for 10 minutes, 5 tries. A `login` code
    goes to a registered subject and signs it in; a `proof` code goes to any address and proves only that the
    person holds it (the privacy center's form for people who are not registered)."""

    __tablename__ = "login_code"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email_hash: str = Field(sa_type=String(64), index=True)
    purpose: str = Field(default="login", sa_type=String(10))  # login | proof | contact (marketing)
    subject_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=True)
    )
    code_hash: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginAttempt(SQLModel, table=True):
    """Every login request and code check, by keyed hashes of the address and the client IP: the rate limits
    count these, whether or not the address is known, so that the limits reveal nothing either."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_email_hash_at", "email_hash", "at"),
        Index("ix_login_attempt_ip_hash_at", "ip_hash", "at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(10))  # request | verify
    email_hash: str = Field(sa_type=String(64))
    ip_hash: str = Field(sa_type=String(64))
    at: datetime = Field(sa_type=UTCDateTime)
