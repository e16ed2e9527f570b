"""Processors (the recipients of personal data) and the tasks addressed to them (GDPR Art. 19)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, Uuid
from sqlalchemy import Text as SAText
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import JSONColumn, UTCDateTime
from app.processors.schemas import TaskStatus


class Processor(SQLModel, table=True):
    __tablename__ = "processor"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_type=String(200))
    dpa_reference: str = Field(sa_type=String(200))
    country: str = Field(sa_type=String(2))
    contact_email: str = Field(sa_type=String(254))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    # The transfer mechanism (GDPR Art. 45-49) of a processor in a third country: adequacy_decision, scc,
    # bcr or derogation, with what each needs (schemas.Transfer); None when no transfer is safeguarded.
    transfer_mechanism: str | None = Field(default=None, sa_type=String(20))
    scc_module: int | None = Field(default=None, sa_type=Integer)
    scc_signed_on: date | None = Field(default=None, sa_type=Date)
    derogation: str | None = Field(default=None, sa_type=String(40))
    transfer_reference: str | None = Field(default=None, sa_type=String(200))
    tia_reference: str | None = Field(default=None, sa_type=String(200))  # transfer impact assessment
    sub_processors: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONColumn)
    dpa_signed_on: date | None = Field(default=None, sa_type=Date)
    dpa_expires_on: date | None = Field(default=None, sa_type=Date)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Ended: it receives no more disclosures, its API clients get no tokens; its tasks stay.
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = Field(default=None, sa_type=SAText)


class ProcessorTask(SQLModel, table=True):
    __tablename__ = "processor_task"
    __table_args__ = (Index("ix_processor_task_processor_id_status", "processor_id", "status"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    processor_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("processor.id"), nullable=False))
    subject_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("subject.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    type: str = Field(sa_type=String(20))  # erasure | rectification | restriction
    status: str = Field(default=TaskStatus.open, sa_type=String(10))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    # The deadline of the request it carries out (Art. 12(3)); None for tasks older than the column.
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What the processor needs to act (schemas.TaskDetails): the categories it received, the identifiers it
    # was given (to find the person), what changed. The identifiers and changes go when the task is done.
    details: dict[str, Any] | None = Field(default=None, sa_type=JSONColumn)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = Field(default=None, sa_type=SAText)
