from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from app.catalog.schemas import ControllerRead, LegalBasis, Localized
from app.core.types import UTCTimestamp


class RecipientEntry(BaseModel):
    id: uuid.UUID
    name: str
    country: str
    third_country: bool
    dpa_reference: str
    contact_email: str


class ActivityEntry(BaseModel):
    purpose: str
    name: Localized
    description: Localized
    legal_basis: LegalBasis
    data_categories: list[str]
    subject_categories: list[str]
    recipients: list[RecipientEntry] = Field(
        description="Processors that have received data for this purpose."
    )
    third_country_transfers: list[str] = Field(
        description="Recipients outside the EU/EEA, as `name (country)`."
    )
    retention: dict[str, Any]
    retention_by_category: dict[str, Any]


class RecordOfProcessing(BaseModel):
    """GDPR Art. 30(1), generated from the live catalog, processor registry and configuration."""

    generated_at: UTCTimestamp
    controller: ControllerRead
    data_protection_contact: str
    activities: list[ActivityEntry]
    processors: list[RecipientEntry] = Field(description="The whole processor registry.")
    security_measures: list[str] = Field(
        description="Art. 32 measures, described from the running configuration."
    )
