from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from app.catalog.schemas import ControllerRead, LegalBasis, Localized
from app.core.types import UTCTimestamp
from app.processors.schemas import SubProcessor, Transfer, TransferRead


class RecipientEntry(BaseModel):
    id: uuid.UUID
    name: str
    country: str
    third_country: bool
    dpa_reference: str
    contact_email: str
    # Transfers and agreements (issue 16, part 3).
    transfer: Transfer | None = Field(description="The transfer mechanism, for a third country.")
    safeguard: str = Field(description="The transfer's safeguard, in words.")
    tia_reference: str | None
    sub_processors: list[SubProcessor]
    dpa_signed_on: date | None
    dpa_expires_on: date | None
    ended_at: UTCTimestamp | None


class AssessmentEntry(BaseModel):
    lia_reference: str | None = Field(description="The legitimate-interest assessment, if any.")
    lia_outcome: str | None = Field(description="`approved` or `rejected`.")
    lia_required: bool = Field(description="The purpose rests on legitimate interest.")
    high_risk: bool
    dpia_reference: str | None = Field(description="The DPIA, required when high-risk.")
    usable: bool = Field(
        description="Decisions may allow the purpose: an approved LIA where required, a DPIA where high-risk."
    )


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
        description="Recipients outside the EU/EEA, as `name (country): safeguard`."
    )
    retention: dict[str, Any]
    retention_by_category: dict[str, Any]
    assessments: AssessmentEntry = Field(description="The purpose's LIA and DPIA (Art. 6(1)(f), Art. 35).")


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
    transfers: list[TransferRead] = Field(
        description="Every transfer to a third country (Art. 30(1)(e)): processors and sub-processors "
        "outside the EU/EEA, each with its safeguard; ended processors included, with `ended_at`."
    )
    security_measures: list[str] = Field(
        description="Art. 32 measures, described from the running configuration."
    )
    breach_register: BreachRegisterEntry = Field(description="The breach register (Art. 33(5)).")
