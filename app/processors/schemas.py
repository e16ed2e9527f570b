from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class TransferMechanism(StrEnum):
    """What makes a transfer outside the EU/EEA lawful (GDPR chapter V)."""

    adequacy_decision = "adequacy_decision"  # Art. 45
    scc = "scc"  # Art. 46(2)(c): the Commission's standard contractual clauses (2021/914)
    bcr = "bcr"  # Art. 47: binding corporate rules
    derogation = "derogation"  # Art. 49


class Derogation(StrEnum):
    """The derogations of Art. 49(1), point by point, and its second subparagraph."""

    explicit_consent = "explicit_consent"  # (a)
    contract_with_subject = "contract_with_subject"  # (b)
    contract_in_subject_interest = "contract_in_subject_interest"  # (c)
    public_interest = "public_interest"  # (d)
    legal_claims = "legal_claims"  # (e)
    vital_interests = "vital_interests"  # (f)
    public_register = "public_register"  # (g)
    compelling_legitimate_interests = "compelling_legitimate_interests"  # second subparagraph


# What each mechanism needs, and what it may not carry (a clear 422 either way).
_NEEDS: dict[TransferMechanism, tuple[str, ...]] = {
    TransferMechanism.adequacy_decision: ("reference",),
    TransferMechanism.scc: ("scc_module", "scc_signed_on"),
    TransferMechanism.bcr: ("reference",),
    TransferMechanism.derogation: ("derogation",),
}
_OPTIONAL: dict[TransferMechanism, tuple[str, ...]] = {
    TransferMechanism.adequacy_decision: (),
    TransferMechanism.scc: ("reference",),
    TransferMechanism.bcr: (),
    TransferMechanism.derogation: ("reference",),
}


class Transfer(BaseModel):
    """The safeguard of a transfer to a third country. `adequacy_decision`: `reference` names the decision;
    `scc`: `scc_module` (1 controller to controller, 2 controller to processor, 3 processor to processor,
    4 processor to controller) and `scc_signed_on`, `reference` optional; `bcr`: `reference` names the
    approved rules; `derogation`: which one (`derogation`), `reference` optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "mechanism": "scc",
                    "scc_module": 2,
                    "scc_signed_on": "2026-03-01",
                    "reference": "SCC-2026-7",
                },
                {"mechanism": "adequacy_decision", "reference": "EU-US Data Privacy Framework, C(2023) 4745"},
                {"mechanism": "derogation", "derogation": "explicit_consent"},
            ]
        },
    )

    mechanism: TransferMechanism
    scc_module: Annotated[int, Field(ge=1, le=4)] | None = Field(
        default=None, description="SCC module 1-4 (scc only)."
    )
    scc_signed_on: date | None = Field(default=None, description="When the SCCs were signed (scc only).")
    derogation: Derogation | None = Field(
        default=None, description="Which Art. 49 derogation (derogation only)."
    )
    reference: Text200 | None = Field(
        default=None,
        description="The adequacy decision or the approved BCR (required for those); the contract's "
        "reference otherwise.",
    )

    @model_validator(mode="after")
    def _complete(self) -> Transfer:
        needed, allowed = _NEEDS[self.mechanism], _NEEDS[self.mechanism] + _OPTIONAL[self.mechanism]
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a transfer by {self.mechanism} needs {' and '.join(missing)}")
        extra = [
            f
            for f in ("scc_module", "scc_signed_on", "derogation", "reference")
            if f not in allowed and getattr(self, f) is not None
        ]
        if extra:
            raise ValueError(f"{', '.join(extra)} does not belong to a transfer by {self.mechanism}")
        return self


class SubProcessor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text200
    country: Country = Field(description="ISO 3166-1 alpha-2.")
    purpose: Text200 = Field(description="What it does with the data.")


class _Agreement(BaseModel):
    """The fields a processor's registration and its edits share, beyond API.md's."""

    transfer: Transfer | None = Field(
        default=None,
        description="Required before a processor in a third country may receive data: without it, "
        "disclosures to it are recorded flagged (`no_transfer_mechanism`). Refused for an EU/EEA country.",
    )
    tia_reference: Text200 | None = Field(
        default=None, description="The transfer impact assessment, by reference (third countries)."
    )
    sub_processors: list[SubProcessor] | None = Field(
        default=None, max_length=100, description="Its sub-processors (Art. 28(2), (4))."
    )
    dpa_signed_on: date | None = Field(
        default=None, description="When the agreement (Art. 28(3)) was signed."
    )
    dpa_expires_on: date | None = Field(default=None, description="When it expires; after `dpa_signed_on`.")


class ProcessorCreate(_Agreement):
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
                    "dpa_signed_on": "2026-01-15",
                    "dpa_expires_on": "2028-01-14",
                    "sub_processors": [{"name": "Cloud AB", "country": "SE", "purpose": "Hosting"}],
                },
                {
                    "name": "Support Desk Inc.",
                    "dpa_reference": "DPA-2026-022",
                    "country": "US",
                    "contact_email": "privacy@desk.example",
                    "transfer": {"mechanism": "scc", "scc_module": 2, "scc_signed_on": "2026-03-01"},
                    "tia_reference": "TIA-2026-03",
                },
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


class ProcessorUpdate(_Agreement):
    """Only the fields sent change; `null` clears an optional one. The webhook is managed under
    /v1/webhooks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"transfer": {"mechanism": "bcr", "reference": "BCR approved by CNIL, 2024"}},
                {"dpa_expires_on": "2029-01-14", "contact_email": "dpo@mailer.example"},
            ]
        },
    )

    name: Text200 | None = None
    dpa_reference: Text200 | None = None
    country: Country | None = None
    contact_email: Email | None = None

    @model_validator(mode="after")
    def _required_stay(self) -> ProcessorUpdate:
        for name in ("name", "dpa_reference", "country", "contact_email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class ProcessorEnd(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Contract ended; data returned and deleted."}]},
    )

    ended_at: UTCTimestamp | None = Field(default=None, description="Defaults to now; never in the future.")
    reason: Text2000 | None = None


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
    transfer: Transfer | None
    transfer_safeguarded: bool = Field(
        description="False for a processor in a third country without a transfer mechanism: disclosures to "
        "it are recorded flagged."
    )
    tia_reference: str | None
    sub_processors: list[SubProcessor]
    dpa_signed_on: date | None
    dpa_expires_on: date | None
    updated_at: UTCTimestamp | None
    ended_at: UTCTimestamp | None = Field(
        description="Ended: no more disclosures to it, no tokens for its clients; its tasks stay."
    )
    end_reason: str | None


class TransferRead(BaseModel):
    """One transfer of personal data to a third country, and what makes it lawful."""

    processor_id: uuid.UUID = Field(description="The processor it goes to, or through (a sub-processor's).")
    recipient: str = Field(description="Who receives it: the processor, or one of its sub-processors.")
    country: str
    via: str | None = Field(
        description="For a sub-processor: the processor it works for (an onward transfer)."
    )
    mechanism: TransferMechanism | None = Field(description="None: no mechanism recorded.")
    safeguard: str = Field(description="The safeguard, in words (English).")
    tia_reference: str | None
    ended_at: UTCTimestamp | None


def transfer_of(values: dict[str, Any]) -> Transfer | None:
    """The stored columns as a Transfer (None when no mechanism is recorded)."""
    if values.get("transfer_mechanism") is None:
        return None
    return Transfer.model_construct(
        mechanism=TransferMechanism(values["transfer_mechanism"]),
        scc_module=values.get("scc_module"),
        scc_signed_on=values.get("scc_signed_on"),
        derogation=Derogation(values["derogation"]) if values.get("derogation") else None,
        reference=values.get("transfer_reference"),
    )


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
