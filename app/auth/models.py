"""API clients: machine callers that exchange credentials for tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel, String

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
