"""The outbox: events for integrators, written in the same transaction as the change they announce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import JSONColumn, UTCDateTime


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(sa_type=String(60))
    subject_id: uuid.UUID | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(sa_type=JSONColumn)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
