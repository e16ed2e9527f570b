"""Notice deliveries and the notices owed: the API models."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schemas import Language, PolicyVersionId
from app.core.types import UTCTimestamp


class DeliveryMethod(StrEnum):
    """How a subject was given the privacy notice."""

    at_collection = "at_collection"  # Art. 13: when its data was collected from it (registration)
    first_contact = "first_contact"  # Art. 14(3)(b): at the first communication with it
    mail = "mail"  # mailed by the service


class DueReason(StrEnum):
    not_from_subject = "not_from_subject"  # Art. 14(3)(a): within one month of obtaining the data
    notice_changed = "notice_changed"  # a new version changed a section that concerns the subject


class NoticeDeliveryRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f1b7e-3a52-4c0e-9d55-8f5f1c2b9a11",
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "version": "2026-11",
                    "language": "sv",
                    "method": "at_collection",
                    "delivered_at": "2026-11-29T10:00:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    subject_id: uuid.UUID
    version: str = Field(description="The notice version given (GET /v1/policies/{version}).")
    language: Language
    method: DeliveryMethod
    delivered_at: UTCTimestamp


class NoticeDeliveryList(BaseModel):
    items: list[NoticeDeliveryRead] = Field(description="Newest first.")
    next_cursor: None = Field(default=None, description="Always null: a subject is given few notices.")


class NoticeDeliveryCreate(BaseModel):
    """Staff record a notice given at the first contact, or have the service mail it now."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"method": "mail", "language": "sv"}]},
    )

    method: DeliveryMethod = Field(
        description="`first_contact`: staff gave it (record only); `mail`: the service mails it now. "
        "`at_collection` is recorded by registration itself."
    )
    language: Language = "sv"
    version: PolicyVersionId | None = Field(
        default=None, description="The version given; defaults to the one in force."
    )


class NoticeDueRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "reason": "not_from_subject",
                    "version": None,
                    "due_at": "2026-12-29T10:00:00Z",
                    "overdue": False,
                }
            ]
        }
    )

    subject_id: uuid.UUID
    reason: DueReason
    version: str | None = Field(description="The version to give; null: the one in force when it is given.")
    due_at: UTCTimestamp = Field(description="Art. 14(3): one calendar month after the data was obtained.")
    overdue: bool


class NoticeDueList(BaseModel):
    items: list[NoticeDueRead] = Field(description="Soonest due first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class MailingResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mailed": 100, "skipped": 0, "remaining": 42}]}
    )

    mailed: int = Field(description="Notices mailed (each recorded as a delivery).")
    skipped: int = Field(description="Owed notices dropped: the subject was erased or has no address.")
    remaining: int = Field(description="Notices still owed; call again until 0.")
