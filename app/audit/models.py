"""The audit trail: append-only events, hash-chained per subject."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, String

from app.core.types import UTCDateTime


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_event_chain_seq"),)

    id: uuid.UUID = Field(primary_key=True)
    # One chain per subject (its id), "global" for events about no subject: writers for different
    # subjects never wait on each other.
    chain: str = Field(sa_type=String(36))
    seq: int
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(200))
    role: str = Field(sa_type=String(20))
    action: str = Field(sa_type=String(80))
    # Not indexed: a subject's events are its chain's (the unique (chain, seq) index finds them).
    subject_id: uuid.UUID | None = None
    target: str | None = Field(default=None, sa_type=String(200))
    request_id: str | None = Field(default=None, sa_type=String(128))
    prev_hash: str = Field(sa_type=String(64))
    # HMAC-SHA256 (hex) under the audit key `key_id`, over the event's fields and prev_hash; events written
    # before the chain was keyed (migration 0014) have no key id and a plain SHA-256 here.
    hash: str = Field(sa_type=String(64))
    key_id: str | None = Field(default=None, sa_type=String(32))


class AuditChainHead(SQLModel, table=True):
    """The last link of each chain; its row lock serializes appends to that chain."""

    __tablename__ = "audit_chain_head"

    chain: str = Field(sa_type=String(36), primary_key=True)
    seq: int
    hash: str = Field(sa_type=String(64))
