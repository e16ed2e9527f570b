from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Email, Text200, Text2000, UTCTimestamp
from app.processors.countries import ISO_3166_ALPHA2
from app.webhooks.schemas import WebhookURL

Country = StrEnum("Country", {code: code for code in sorted(ISO_3166_ALPHA2)})  # type: ignore[misc]  # members made from the ISO list at import; mypy reads only literal ones


class TaskType(StrEnum):
    erasure = "erasure"
    rectification = "rectification"
    restriction = "restriction"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"


class ProcessorCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Mailchimp-like Mailer AB",
                    "dpa_reference": "DPA-2026-014",
                    "country": "SE",
                    "contact_email": "privacy@mailer.example",
                    "webhook_url": "https://mailer.example/hooks/wesafe",
                }
            ]
        },
    )

    name: Text200
    dpa_reference: Text200 = Field(description="The data processing (confidentiality) agreement.")
    country: Country = Field(
        description="ISO 3166-1 alpha-2. Outside the EU/EEA means a third-country transfer."
    )
    contact_email: Email
    webhook_url: WebhookURL | None = Field(
        default=None, description="Where its tasks are delivered as webhooks."
    )


class RecipientRead(BaseModel):
    id: uuid.UUID
    name: str
    country: str
    third_country: bool = Field(
        description="Outside the EU/EEA: a transfer to a third country (GDPR Art. 15(2))."
    )


class ProcessorRead(RecipientRead):
    dpa_reference: str
    contact_email: str
    webhook_url: str | None
    created_at: UTCTimestamp


class ProcessorCreated(ProcessorRead):
    webhook_secret: str | None = Field(description="`whsec_...` for verifying its webhooks; shown once.")


class TaskChange(BaseModel):
    """A value rectified since the request was received, in a category the processor received."""

    category: str
    value: str = Field(description="The corrected value (payment data masked).")
    changed_at: UTCTimestamp


class TaskDetails(BaseModel):
    categories: list[str] = Field(
        description="The categories of personal data this processor received about the subject, from the "
        "disclosures reported to the log."
    )
    identifiers: dict[str, list[str]] | None = Field(
        default=None,
        description="The values it was given in those categories that identify the person (name, e-mail, "
        "phone, address, username), as they were when the task was opened, so that it can find the person "
        "in its systems even after an erasure. Removed once the task is done.",
    )
    changes: list[TaskChange] | None = Field(
        default=None, description="A rectification's corrected values. Removed once the task is done."
    )


class TaskRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "2c1b0a9f-8e7d-4c6b-a5f4-e3d2c1b0a9f8",
                    "processor_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "type": "erasure",
                    "status": "open",
                    "created_at": "2026-11-25T10:00:00Z",
                    "due_at": "2026-12-25T10:00:00Z",
                    "details": {
                        "categories": ["email", "name"],
                        "identifiers": {"email": ["anna.svensson@example.se"], "name": ["Anna Svensson"]},
                        "changes": None,
                    },
                    "completed_at": None,
                    "note": None,
                    "overdue": False,
                }
            ]
        }
    )

    id: uuid.UUID
    processor_id: uuid.UUID
    subject_id: uuid.UUID
    type: TaskType
    status: TaskStatus
    created_at: UTCTimestamp
    due_at: UTCTimestamp | None = Field(
        description="The deadline of the rights request the task carries out (one calendar month from its "
        "receipt, or three when extended); null only for tasks opened before deadlines were recorded."
    )
    details: TaskDetails
    completed_at: UTCTimestamp | None
    note: str | None
    overdue: bool = Field(
        description="Still open past `due_at` (or, without one, after the configured number of days, 30 by "
        "default)."
    )


class TaskComplete(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "Erased from our CRM."}]}
    )

    note: Text2000 | None = None
