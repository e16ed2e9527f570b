"""The catalog's vocabulary (legal bases, data categories, sources) and its API models."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.core.types import Text200, Text2000, Text20000, UTCTimestamp, reject_null, untitled_refs


class LegalBasis(StrEnum):
    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    legitimate_interest = "legitimate_interest"


class Category(StrEnum):
    name = "name"
    address = "address"
    email = "email"
    phone = "phone"
    job_title = "title"  # the policy's "titel"; a member named `title` would hide str.title
    username = "username"
    photo = "photo"
    payment = "payment"
    self_reported = "self_reported"
    user_content = "user_content"
    ip_address = "ip_address"


# Categories under the stricter access control the policy promises: encrypted at rest, masked on display.
SENSITIVE_CATEGORIES = frozenset({Category.payment})


class Source(StrEnum):
    direct = "direct"
    website = "website"
    public_register = "public_register"
    employee = "employee"
    course_signup = "course_signup"
    newsletter_signup = "newsletter_signup"
    survey = "survey"
    contact = "contact"


class SubjectCategory(StrEnum):
    """Whose data a purpose concerns (the record of processing lists these, GDPR Art. 30(1)(c))."""

    customers = "customers"
    prospects = "prospects"
    newsletter_subscribers = "newsletter_subscribers"
    website_visitors = "website_visitors"
    course_participants = "course_participants"
    job_applicants = "job_applicants"
    contacts = "contacts"


class RetentionClock(StrEnum):
    """What a retention rule counts from (the rules' `clock`)."""

    after_collection = "after_collection"
    after_relationship_end = "after_relationship_end"
    until_withdrawn = "until_withdrawn"
    bookkeeping = "bookkeeping"


class LiaOutcome(StrEnum):
    """The outcome of a legitimate-interest assessment (GDPR Art. 6(1)(f)): only `approved` lets a
    `legitimate_interest` purpose be used in decisions."""

    approved = "approved"
    rejected = "rejected"


class MarketingChannelCode(StrEnum):
    """A channel a purpose is sent by (the marketing channels)."""

    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"


class RetentionAction(StrEnum):
    delete = "delete"
    anonymize = "anonymize"


Language = Literal["sv", "en"]
PurposeCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$", examples=["newsletter"])]
PolicyVersionId = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$", examples=["2026-11"])]
ISODuration = Annotated[
    str,
    Field(
        pattern=r"^P(\d{1,3}Y(\d{1,4}M)?(\d{1,5}D)?|\d{1,4}M(\d{1,5}D)?|\d{1,5}D)$",
        examples=["P12M"],
        description="ISO 8601 duration in years, months and days, e.g. `P12M`.",
    ),
]


class Localized(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sv: Text2000
    en: Text2000


class LocalizedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sv: Text20000
    en: Text20000


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: RetentionAction
    description: Localized


class AfterCollection(_Rule):
    """Expires a fixed period after the item was collected."""

    clock: Literal["after_collection"]
    period: ISODuration


class AfterRelationshipEnd(_Rule):
    """Expires a fixed period after the customer relationship ends."""

    clock: Literal["after_relationship_end"]
    period: ISODuration


class UntilWithdrawn(_Rule):
    """For consent purposes: expires when consent is withdrawn, after an optional grace period."""

    clock: Literal["until_withdrawn"]
    period: ISODuration | None = None


class Bookkeeping(_Rule):
    """Kept to the end of the seventh calendar year after the year of collection (Bokföringslagen 7:2)."""

    clock: Literal["bookkeeping"]


RetentionRule = Annotated[
    AfterCollection | AfterRelationshipEnd | UntilWithdrawn | Bookkeeping,
    Field(
        discriminator="clock",
        description="When data collected for the purpose expires, and what happens to it then.",
        examples=[
            {
                "clock": "after_relationship_end",
                "period": "P12M",
                "action": "delete",
                "description": {
                    "sv": "12 månader efter att kundrelationen upphört",
                    "en": "12 months after the customer relationship ends",
                },
            }
        ],
    ),
]


Categories = Annotated[list[Category], Field(min_length=1, max_length=len(Category))]
SubjectCategories = Annotated[list[SubjectCategory], Field(max_length=len(SubjectCategory))]
RetentionByCategory = Annotated[
    dict[Category, RetentionRule],
    Field(
        description="Where a data category is kept differently from the purpose's rule, e.g. IP addresses."
    ),
]


Reference = Annotated[str, Field(min_length=1, max_length=200, examples=["LIA-2026-01"])]
Channels = Annotated[
    list[MarketingChannelCode],
    Field(
        max_length=len(MarketingChannelCode),
        description="The marketing channels the purpose is sent by. A subject opted out of every one of them "
        "(by channel, by contact or by an unsubscribe link) has its consent to the purpose withdrawn (method "
        "`unsubscribe`), and decisions for it answer `opted_out`. Empty: not sent by any channel.",
    ),
]
Recipients = Annotated[
    list[Text200],
    Field(
        max_length=50,
        description="Who else receives the purpose's data (recipients or categories of recipients, Art. "
        "13(1)(e)); a consent receipt's `thirdPartyDisclosure` is true when there is any.",
    ),
]


class PurposeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: Localized
    description: Localized
    legal_basis: LegalBasis
    retention: RetentionRule
    retention_by_category: RetentionByCategory
    categories: list[Category]
    subject_categories: list[SubjectCategory]
    gpc: bool = Field(
        description="Covered by Global Privacy Control: a web consent grant sent with `Sec-GPC: 1` "
        "is recorded as a withdrawal."
    )
    channels: list[MarketingChannelCode] = Field(description="The marketing channels it is sent by.")
    recipients: list[str] = Field(description="Who else receives its data.")
    lia_reference: str | None = Field(
        description="The legitimate-interest assessment it rests on (required for `legitimate_interest`)."
    )
    lia_outcome: LiaOutcome | None = Field(
        description="Only `approved` lets a `legitimate_interest` purpose be used in decisions."
    )
    high_risk: bool = Field(description="Likely to result in a high risk (Art. 35): needs a DPIA.")
    dpia_reference: str | None = Field(description="The data protection impact assessment, if high-risk.")


class PurposeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "courses",
                    "name": {"sv": "Kurser och seminarier", "en": "Courses and seminars"},
                    "description": {
                        "sv": "Anmälan till och genomförande av kurser.",
                        "en": "Signing up for and holding courses.",
                    },
                    "legal_basis": "contract",
                    "retention": {
                        "clock": "after_collection",
                        "period": "P24M",
                        "action": "delete",
                        "description": {
                            "sv": "24 månader efter insamling",
                            "en": "24 months after collection",
                        },
                    },
                    "categories": ["name", "email", "phone"],
                }
            ]
        },
    )

    code: PurposeCode
    name: Localized
    description: Localized
    legal_basis: LegalBasis
    retention: RetentionRule
    retention_by_category: RetentionByCategory = Field(default_factory=dict)
    categories: Categories
    subject_categories: SubjectCategories = Field(default_factory=list)
    gpc: StrictBool = Field(default=False, description="Honour Global Privacy Control for this purpose.")
    channels: Channels = Field(default_factory=list)
    recipients: Recipients = Field(default_factory=list)
    lia_reference: Reference | None = None
    lia_outcome: LiaOutcome | None = None
    high_risk: StrictBool = False
    dpia_reference: Reference | None = None


class PurposeUpdate(BaseModel):
    """Fields to change; those left out stay as they are (null is not a value)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=untitled_refs)

    name: Localized | SkipJsonSchema[None] = None
    description: Localized | SkipJsonSchema[None] = None
    legal_basis: LegalBasis | SkipJsonSchema[None] = None
    retention: RetentionRule | SkipJsonSchema[None] = None
    retention_by_category: RetentionByCategory | SkipJsonSchema[None] = None
    categories: Categories | SkipJsonSchema[None] = None
    subject_categories: SubjectCategories | SkipJsonSchema[None] = None
    gpc: StrictBool | SkipJsonSchema[None] = None
    channels: Channels | SkipJsonSchema[None] = None
    recipients: Recipients | SkipJsonSchema[None] = None
    lia_reference: Reference | SkipJsonSchema[None] = Field(
        default=None, description="The legitimate-interest assessment's reference (audited)."
    )
    lia_outcome: LiaOutcome | SkipJsonSchema[None] = Field(
        default=None,
        description="The assessment's outcome (audited); it counts only with a reference (without one, "
        "decisions answer `lia_missing`).",
    )
    high_risk: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="Mark the purpose high-risk (Art. 35): it then needs a DPIA reference."
    )
    dpia_reference: Reference | SkipJsonSchema[None] = Field(
        default=None, description="The data protection impact assessment's reference (audited)."
    )

    _given = field_validator("*", mode="before")(reject_null)


ASSESSMENT_FIELDS = frozenset({"lia_reference", "lia_outcome", "high_risk", "dpia_reference"})


class PurposeList(BaseModel):
    items: list[PurposeRead]


class SupervisoryAuthority(BaseModel):
    name: str
    former_name: str
    website: str
    email: str
    address: str


class ControllerRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "WeSafe IT",
                    "contact_email": "dataskydd@wesafe.se",
                    "website": "https://www.wesafe.se",
                    "supervisory_authority": {
                        "name": "Integritetsskyddsmyndigheten (IMY)",
                        "former_name": "Datainspektionen",
                        "website": "https://www.imy.se",
                        "email": "imy@imy.se",
                        "address": "Box 8114, 104 20 Stockholm, Sweden",
                    },
                }
            ]
        }
    )

    name: str
    contact_email: str
    website: str
    supervisory_authority: SupervisoryAuthority


SectionId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$", examples=["rights"])]


SectionPurposes = Annotated[
    list[PurposeCode],
    Field(
        max_length=50,
        description="The purposes this section describes. A change to its text concerns the subjects of "
        "those purposes (their consents under an older version become `renewal_due`); a section naming "
        "no purpose concerns everyone.",
    ),
]


class PolicySection(BaseModel):
    """One section of the notice, in one language."""

    id: SectionId
    title: str
    body: str
    purposes: list[str] = Field(default_factory=list, description="The purposes this section describes.")


class LocalizedSection(BaseModel):
    """One section of the notice, in both languages: the two texts cannot drift apart."""

    model_config = ConfigDict(extra="forbid")

    id: SectionId
    title: Localized
    body: Annotated[LocalizedBody, Field()]
    purposes: SectionPurposes = Field(default_factory=list)


class PolicyPublish(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "version": "2027-01",
                    "effective_from": "2027-01-01T00:00:00Z",
                    "sections": [
                        {
                            "id": "controller",
                            "title": {"sv": "Personuppgiftsansvarig", "en": "Controller"},
                            "body": {"sv": "WeSafe IT ...", "en": "WeSafe IT ..."},
                        }
                    ],
                }
            ]
        },
    )

    version: PolicyVersionId
    effective_from: UTCTimestamp | None = Field(
        default=None, description="Defaults to now; never in the past."
    )
    sections: Annotated[
        list[LocalizedSection], Field(min_length=1, max_length=50, description="Section ids must be unique.")
    ]

    def by_language(self) -> dict[str, list[dict[str, Any]]]:
        return {
            lang: [
                {
                    "id": s.id,
                    "title": getattr(s.title, lang),
                    "body": getattr(s.body, lang),
                    **({"purposes": sorted(set(s.purposes))} if s.purposes else {}),
                }
                for s in self.sections
            ]
            for lang in ("sv", "en")
        }


class PolicyRead(BaseModel):
    version: str
    language: Language
    effective_from: UTCTimestamp
    published_at: UTCTimestamp
    sections: list[PolicySection]


class PolicySummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    effective_from: UTCTimestamp
    published_at: UTCTimestamp
    languages: list[Language] = ["sv", "en"]


class PolicyList(BaseModel):
    items: list[PolicySummary]


# --- the cookie declaration ---------------------------------------------------------------------------------


class CookieCategoryCode(StrEnum):
    """The website's cookie categories: `necessary` needs no consent; each other maps to a consent purpose."""

    necessary = "necessary"
    preferences = "preferences"
    analytics = "analytics"
    marketing = "marketing"


class CookieCategoryRead(BaseModel):
    code: CookieCategoryCode
    name: str
    description: str
    required: bool = Field(description="Always on, without consent (`necessary` only).")
    purpose: str | None = Field(description="The consent purpose whose consent allows this category.")


class CookieRead(BaseModel):
    id: uuid.UUID
    name: str = Field(examples=["_pk_id.*"])
    provider: str = Field(examples=["WeSafe (Matomo)"])
    category: CookieCategoryCode
    duration: str = Field(examples=["13 månader"])
    description: str


class CookieDeclaration(BaseModel):
    """What the banner shows before a visitor chooses, in one language."""

    categories: list[CookieCategoryRead]
    cookies: list[CookieRead]
    notice_version: str = Field(
        description="The privacy notice in force; a choice made under an older one is asked for again."
    )


class CookieCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "_pk_ref.*",
                    "provider": "WeSafe (Matomo)",
                    "category": "analytics",
                    "duration": {"sv": "6 månader", "en": "6 months"},
                    "description": {
                        "sv": "Kommer ihåg från vilken webbplats du kom.",
                        "en": "Remembers which website you came from.",
                    },
                }
            ]
        },
    )

    name: Text200
    provider: Text200
    category: CookieCategoryCode
    duration: Localized
    description: Localized


class CookieUpdate(BaseModel):
    """Fields to change; those left out stay as they are (null is not a value)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=untitled_refs)

    name: Text200 | SkipJsonSchema[None] = None
    provider: Text200 | SkipJsonSchema[None] = None
    category: CookieCategoryCode | SkipJsonSchema[None] = None
    duration: Localized | SkipJsonSchema[None] = None
    description: Localized | SkipJsonSchema[None] = None

    _given = field_validator("*", mode="before")(reject_null)


class CookieCategoryUpdate(BaseModel):
    """Fields to change; those left out stay as they are (null is not a value)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=untitled_refs)

    name: Localized | SkipJsonSchema[None] = None
    description: Localized | SkipJsonSchema[None] = None
    purpose: PurposeCode | SkipJsonSchema[None] = Field(
        default=None, description="A consent purpose (not for `necessary`)."
    )

    _given = field_validator("*", mode="before")(reject_null)


class CookieEntry(BaseModel):
    """A cookie as the declaration holds it, in both languages (what admins edit)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    provider: str
    category: CookieCategoryCode
    duration: Localized
    description: Localized


class CookieCategoryEntry(BaseModel):
    """A cookie category as the declaration holds it, in both languages (what admins edit)."""

    model_config = ConfigDict(from_attributes=True)

    code: CookieCategoryCode
    name: Localized
    description: Localized
    required: bool
    purpose: str | None
