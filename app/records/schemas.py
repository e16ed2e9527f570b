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


class BreachRegisterEntry(BaseModel):
    """The register of personal data breaches that Art. 33(5) asks for: that it is kept, and what it holds."""

    kept: bool = Field(description="The register exists (GET /v1/breaches, scope `breaches:manage`).")
    retention: str
    total: int
    by_status: dict[str, int] = Field(description="Breaches in each status.")


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
    breach_register: BreachRegisterEntry = Field(description="The breach register (Art. 33(5)).")
