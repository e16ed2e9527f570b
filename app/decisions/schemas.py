from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schemas import LegalBasis, PurposeCode


class Reason(StrEnum):
    consent_granted = "consent_granted"
    consent_withdrawn = "consent_withdrawn"
    no_consent = "no_consent"
    basis_contract = "basis_contract"
    basis_legal_obligation = "basis_legal_obligation"
    basis_legitimate_interest = "basis_legitimate_interest"
    subject_restricted = "subject_restricted"
    subject_erased = "subject_erased"
    objection_upheld = "objection_upheld"
    opted_out = "opted_out"  # the subject opted out of every channel the (consent) purpose is sent by
    lia_missing = "lia_missing"  # a legitimate-interest purpose without a legitimate-interest assessment
    lia_rejected = "lia_rejected"  # its assessment's outcome is not `approved`
    dpia_missing = "dpia_missing"  # a high-risk purpose without a DPIA reference
    unknown_subject = "unknown_subject"
    unknown_purpose = "unknown_purpose"
    renewal_due = "renewal_due"  # allowed, but given under a notice whose text on the purpose has changed


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10", "purpose": "marketing"}]
        },
    )

    subject_id: uuid.UUID
    purpose: PurposeCode


class Decision(BaseModel):
    # Frozen: decisions are shared, one instance per distinct answer (service.decide is cached).
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {"allowed": False, "legal_basis": "consent", "reasons": ["consent_withdrawn"]},
                {"allowed": True, "legal_basis": "legal_obligation", "reasons": ["basis_legal_obligation"]},
            ]
        },
    )

    allowed: bool
    legal_basis: LegalBasis | None = Field(
        description="The purpose's legal basis; null for an unknown purpose."
    )
    reasons: list[Reason] = Field(description="What allows it, or everything that stands in its way.")


class DecisionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DecisionRequest] = Field(min_length=1, max_length=1000)


class DecisionBatchResult(BaseModel):
    results: list[Decision] = Field(description="In the order of the items asked about.")
