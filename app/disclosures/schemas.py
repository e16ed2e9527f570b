from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schemas import Category, PurposeCode
from app.core.types import UTCTimestamp
from app.processors.schemas import RecipientRead


class DisclosureFlag(StrEnum):
    """Why a disclosure was recorded against the rules (docs/behaviour.md, "Disclosures are checked")."""

    subject_erased = "subject_erased"  # disclosed at or after the subject's erasure
    subject_restricted = (
        "subject_restricted"  # the subject is restricted, and the purpose is not a legal obligation
    )
    no_consent = "no_consent"  # a consent purpose, and consent was not granted when disclosed
    no_transfer_mechanism = "no_transfer_mechanism"  # a third-country recipient without a transfer mechanism
    processor_ended = "processor_ended"  # disclosed at or after the recipient ended
    dpa_expired = "dpa_expired"  # disclosed after the recipient's agreement (Art. 28(3)) expired


class DisclosureCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "categories": ["name", "email"],
                    "purpose": "newsletter",
                    "disclosed_at": "2026-11-25T09:00:00Z",
                }
            ]
        },
    )

    subject_id: uuid.UUID
    categories: Annotated[list[Category], Field(min_length=1, max_length=len(Category))]
    purpose: PurposeCode
    disclosed_at: UTCTimestamp | None = Field(
        default=None, description="Defaults to now; never in the future."
    )
    recipient_id: uuid.UUID | None = Field(
        default=None,
        description="Required for staff. A processor reports disclosures to itself: its own id is used.",
    )


class DisclosureBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DisclosureCreate] = Field(min_length=1, max_length=1000)


class BatchAccepted(BaseModel):
    accepted: int


class DisclosureRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "4f3e2d1c-0b9a-4877-a665-5d4c3b2a1f0e",
                    "recipient": {
                        "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                        "name": "Mailer AB",
                        "country": "SE",
                        "third_country": False,
                    },
                    "categories": ["name", "email"],
                    "purpose": "newsletter",
                    "disclosed_at": "2026-11-25T09:00:00Z",
                    "recorded_at": "2026-11-25T09:00:02Z",
                    "reported_by": "processor:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "flagged": True,
                    "flags": ["no_consent"],
                }
            ]
        }
    )

    id: uuid.UUID
    recipient: RecipientRead
    categories: list[Category]
    purpose: str
    disclosed_at: UTCTimestamp
    recorded_at: UTCTimestamp
    reported_by: str
    flagged: bool = Field(
        description="Recorded against a rule: the log keeps what happened, and says what was wrong (`flags`)."
    )
    flags: list[DisclosureFlag] = Field(
        description="Why it is flagged. A processor sees only the flags about itself "
        "(`no_transfer_mechanism`, `processor_ended`, `dpa_expired`)."
    )
