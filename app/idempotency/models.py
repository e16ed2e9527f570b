from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, String

from app.core.types import UTCDateTime


class IdempotencyRecord(SQLModel, table=True):
    """A creating request already carried out: the key, what was asked, and what it created.

    The response itself is not stored (it may hold personal data): a replay reads the resource again."""

    __tablename__ = "idempotency_key"

    caller: str = Field(sa_type=String(220), primary_key=True)
    key: str = Field(sa_type=String(255), primary_key=True)
    fingerprint: str = Field(sa_type=String(64))
    resource_key: str | None = Field(default=None, sa_type=String(200))
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
