"""The breach register's API models (GDPR Art. 33, 34)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.catalog.schemas import Category, Localized, PurposeCode
from app.core.types import Text64, Text100, Text200, Text2000, Text10000, UTCTimestamp


class BreachStatus(StrEnum):
    open = "open"
    assessed = "assessed"
    notified = "notified"
    not_notified = "not_notified"
    closed = "closed"


class BreachRisk(StrEnum):
    """The risk to people's rights and freedoms (Art. 33(1), 34(1))."""

    unlikely = "unlikely"
    risk = "risk"
    high = "high"


class BreachSubjectsException(StrEnum):
    """Why subjects need not be told of a high-risk breach (Art. 34(3))."""

    unintelligible = "unintelligible"  # (a) the data was encrypted or otherwise unintelligible
    risk_removed = "risk_removed"  # (b) later measures make the high risk no longer likely
    public_communication = "public_communication"  # (c) disproportionate effort: a public communication


class SubjectNotification(StrEnum):
    pending = "pending"
    sent = "sent"
    skipped = "skipped"


OPEN_FOR_IMY = frozenset({BreachStatus.open, BreachStatus.assessed})
SubjectCategory = Text64


class BreachFacts(BaseModel):
    """What happened (Art. 33(3)(a)): shared by staff's registration and a processor's report."""

    model_config = ConfigDict(extra="forbid")

    title: Text200 = Field(description="A short name for the breach.")
    description: Text10000 = Field(description="What happened: the nature of the breach.")
    occurred_at: UTCTimestamp | None = Field(default=None, description="When it happened, if known.")
    data_categories: list[Category] = Field(default=[], max_length=len(Category))
    subject_categories: list[SubjectCategory] = Field(
        default=[], max_length=50, description="Kinds of people affected, e.g. `customers`."
    )
    subjects_estimate: int | None = Field(
        default=None, strict=True, ge=0, le=10**10, description="About how many people."
    )
    records_estimate: int | None = Field(
        default=None, strict=True, ge=0, le=10**12, description="About how many records."
    )
    consequences: Text10000 | None = Field(default=None, description="The likely consequences.")
    measures: Text10000 | None = Field(default=None, description="Measures taken or proposed.")


EXAMPLE_FACTS: dict[str, Any] = {
    "title": "Newsletter list exposed by a misconfigured bucket",
    "description": "A storage bucket holding a newsletter export was publicly readable for two days.",
    "occurred_at": "2026-11-20T08:00:00Z",
    "data_categories": ["name", "email"],
    "subject_categories": ["newsletter_subscribers"],
    "subjects_estimate": 1200,
    "consequences": "Phishing mails that use the recipients' names.",
    "measures": "The bucket was closed and its access log reviewed.",
}


class BreachCreate(BreachFacts):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [EXAMPLE_FACTS | {"aware_at": "2026-11-22T09:30:00Z"}]},
    )

    aware_at: UTCTimestamp | None = Field(
        default=None,
        description="When WeSafe became aware of the breach (default: now); IMY is due 72 hours later.",
    )


class BreachReportCreate(BreachFacts):
    """A processor's report to the controller (Art. 33(2))."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [EXAMPLE_FACTS | {"processor_aware_at": "2026-11-22T07:00:00Z"}]},
    )

    processor_aware_at: UTCTimestamp | None = Field(
        default=None, description="When the processor became aware of it."
    )


class AssessBreach(BaseModel):
    """The assessment: the risk, and whether IMY and the subjects are told, each with its reason."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "assess",
                    "risk": "high",
                    "notify_imy": True,
                    "imy_reason": "Names and addresses of 1 200 people were readable by anyone.",
                    "notify_subjects": True,
                    "subjects_reason": "A high risk of targeted phishing.",
                    "consequences": "Phishing mails that use the recipients' names.",
                    "measures": "The bucket was closed; access logs reviewed.",
                }
            ]
        },
    )

    action: Literal["assess"]
    risk: BreachRisk
    notify_imy: StrictBool
    imy_reason: Text2000
    notify_subjects: StrictBool
    subjects_reason: Text2000
    subjects_exception: BreachSubjectsException | None = Field(
        default=None,
        description="Required to leave the subjects of a high-risk breach untold: the Art. 34(3) ground.",
    )
    consequences: Text10000 | None = None
    measures: Text10000 | None = None


class RecordImyNotification(BaseModel):
    """IMY was notified (through its e-service): when, and its reference."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"action": "record_imy_notification", "reference": "IMY-2026-1234"}]},
    )

    action: Literal["record_imy_notification"]
    reference: Text100
    notified_at: UTCTimestamp | None = Field(default=None, description="Default: now.")
    delay_reason: Text2000 | None = Field(
        default=None, description="Required when notified after `due_at` (Art. 33(1))."
    )


class RecordNoNotification(BaseModel):
    """IMY is not notified, as the assessment decided (a breach unlikely to result in a risk)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"action": "record_no_notification"}]}
    )

    action: Literal["record_no_notification"]
    note: Text2000 | None = None


class CloseBreach(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"action": "close", "note": "Measures in place; subjects told."}]},
    )

    action: Literal["close"]
    note: Text2000 | None = None


BreachAction = Annotated[
    AssessBreach | RecordImyNotification | RecordNoNotification | CloseBreach, Field(discriminator="action")
]


class BreachAssessment(BaseModel):
    risk: BreachRisk | None
    notify_imy: bool | None
    imy_reason: str | None
    notify_subjects: bool | None
    subjects_reason: str | None
    subjects_exception: BreachSubjectsException | None
    assessed_at: UTCTimestamp | None
    assessed_by: str | None


class BreachImyNotification(BaseModel):
    due_at: UTCTimestamp = Field(description="72 hours after `aware_at` (Art. 33(1)).")
    overdue: bool = Field(description="Not notified, not decided against, and past `due_at`.")
    notified_at: UTCTimestamp | None
    reference: str | None
    delay_reason: str | None


class BreachSubjectCounts(BaseModel):
    affected: int = Field(description="Subjects linked to the breach.")
    pending: int
    sent: int
    skipped: int = Field(description="Subjects with no address to write to (erased).")


class BreachRead(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    status: BreachStatus
    reported_by: str
    processor_id: uuid.UUID | None
    occurred_at: UTCTimestamp | None
    processor_aware_at: UTCTimestamp | None
    aware_at: UTCTimestamp
    due_at: UTCTimestamp = Field(description="IMY's deadline: 72 hours after `aware_at`.")
    overdue: bool
    created_at: UTCTimestamp
    updated_at: UTCTimestamp
    data_categories: list[str]
    subject_categories: list[str]
    subjects_estimate: int | None
    records_estimate: int | None
    consequences: str | None
    measures: str | None
    assessment: BreachAssessment
    imy: BreachImyNotification
    subject_notice: BreachSubjectNotice | None
    subjects: BreachSubjectCounts
    closed_at: UTCTimestamp | None
    closed_by: str | None
    closing_note: str | None


class BreachReportRead(BaseModel):
    """A processor's view of its own report: what it said, and where the controller has got to."""

    id: uuid.UUID
    title: str
    description: str
    status: BreachStatus
    occurred_at: UTCTimestamp | None
    processor_aware_at: UTCTimestamp | None
    aware_at: UTCTimestamp = Field(description="When WeSafe received the report.")
    data_categories: list[str]
    subject_categories: list[str]
    subjects_estimate: int | None
    records_estimate: int | None
    consequences: str | None
    measures: str | None


# --- finding the subjects affected


class BreachDisclosureQuery(BaseModel):
    """Subjects whose data the recipient received between `from` and `until` (the disclosure log)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "source": "disclosures",
                    "recipient_id": "5b1e0d3c-8a7f-4e2b-9c6d-1f0a2b3c4d5e",
                    "from": "2026-11-01T00:00:00Z",
                    "until": "2026-11-22T00:00:00Z",
                }
            ]
        },
    )

    source: Literal["disclosures"]
    recipient_id: uuid.UUID
    from_: UTCTimestamp = Field(alias="from")
    until: UTCTimestamp
    purpose: PurposeCode | None = None
    categories: list[Category] | None = Field(
        default=None, min_length=1, max_length=len(Category), description="Any of these categories."
    )


class BreachAuditQuery(BaseModel):
    """Subjects with audit events of `action` (and/or by `actor`) between `from` and `until`: say, everyone a
    stolen staff account read."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "source": "audit",
                    "actor": "crm-agent-17",
                    "action": "subject.read",
                    "from": "2026-11-20T00:00:00Z",
                    "until": "2026-11-21T00:00:00Z",
                }
            ]
        },
    )

    source: Literal["audit"]
    action: Text100 | None = Field(default=None, description="The audit action, e.g. `subject.read`.")
    actor: Text200 | None = Field(default=None, description="Who acted (the token's `sub`).")
    from_: UTCTimestamp = Field(alias="from")
    until: UTCTimestamp


SubjectQuery = Annotated[BreachDisclosureQuery | BreachAuditQuery, Field(discriminator="source")]


class BreachQueryRead(BaseModel):
    id: uuid.UUID
    breach_id: uuid.UUID
    criteria: dict[str, object]
    ran_at: UTCTimestamp
    ran_by: str
    matched: int = Field(description="Subjects the query found.")
    linked: int = Field(description="Of them, newly linked to the breach (the others were already).")


class BreachSubjectRead(BaseModel):
    subject_id: uuid.UUID
    added_at: UTCTimestamp
    added_by: str
    query_id: uuid.UUID | None
    notification: SubjectNotification | None
    queued_at: UTCTimestamp | None
    notified_at: UTCTimestamp | None = Field(description="When the mail was sent.")
    language: Literal["sv", "en"] | None = Field(description="The mail's language; null: both.")


# --- telling the subjects


NOTICE_EXAMPLE: dict[str, Any] = {
    "what_happened": {
        "sv": "En fil med namn och e-postadresser till våra nyhetsbrevsläsare gick att läsa för vem som "
        "helst under två dagar i november.",
        "en": "A file with the names and e-mail addresses of our newsletter readers could be read by anyone "
        "for two days in November.",
    },
    "consequences": {
        "sv": "Någon kan försöka lura dig med e-post som ser ut att komma från oss.",
        "en": "Someone may try to trick you with mail that seems to come from us.",
    },
    "measures": {
        "sv": "Vi har stängt åtkomsten och går igenom våra rutiner.",
        "en": "We have closed the access and are reviewing our routines.",
    },
    "advice": {
        "sv": "Klicka inte på länkar i oväntade meddelanden. Vi ber dig aldrig om lösenord.",
        "en": "Do not click links in unexpected messages. We never ask for your password.",
    },
}


class BreachSubjectNotice(BaseModel):
    """What the mail tells each affected subject, in Swedish and English."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NOTICE_EXAMPLE]})

    what_happened: Localized = Field(description="The nature of the breach, in plain words (Art. 34(2)).")
    consequences: Localized = Field(description="Its likely consequences for the person.")
    measures: Localized = Field(description="What WeSafe has done or will do about it.")
    advice: Localized = Field(description="What the person can do to protect themselves.")


class BreachNotifySubjects(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"notice": NOTICE_EXAMPLE}]},
    )

    notice: BreachSubjectNotice | None = Field(
        default=None,
        description="Required the first time; afterwards it may be left out (or given unchanged).",
    )


class BreachNotificationRun(BaseModel):
    breach_id: uuid.UUID
    queued: int = Field(description="Subjects queued by this call (not queued before).")
    subjects: BreachSubjectCounts


BreachRead.model_rebuild()
