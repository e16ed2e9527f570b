"""Retention runs: their progress (resumable cursor) and their report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel, String

from app.core.types import JSONColumn, UTCDateTime


class RetentionRun(SQLModel, table=True):
    __tablename__ = "retention_run"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dry_run: bool
    status: str = Field(sa_type=String(20))  # running | completed | failed | interrupted
    requested_by: str = Field(sa_type=String(220))
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last subject id handled: each batch commits its changes with its progress.
    cursor: str | None = Field(default=None, sa_type=String(36))
    subjects_scanned: int = Field(default=0)
    items_scanned: int = Field(default=0)
    report: dict[str, Any] = Field(default_factory=dict, sa_type=JSONColumn)
    error: str | None = Field(default=None, sa_type=String(300))
    # The run whose process died, and whose cursor and report this one carried on from.
    resumed_from: uuid.UUID | None = Field(default=None)
