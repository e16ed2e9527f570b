"""The catalog's vocabulary (legal bases, data categories, sources) and its API models."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import Text, UTCTimestamp


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
    title = "title"
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


class RetentionClock(StrEnum):
    after_collection = "after_collection"
    after_relationship_end = "after_relationship_end"
    until_withdrawn = "until_withdrawn"
    bookkeeping = "bookkeeping"


class RetentionAction(StrEnum):
    delete = "delete"
    anonymize = "anonymize"


Language = Literal["sv", "en"]
PurposeCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$", examples=["newsletter"])]
PolicyVersionId = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$", examples=["2026-11"])]
ISODuration = Annotated[str, Field(pattern=r"^P(\d{1,3}Y(\d{1,4}M)?(\d{1,5}D)?|\d{1,4}M(\d{1,5}D)?|\d{1,5}D)$", examples=["P12M"],
                                   description="ISO 8601 duration in years, months and days, e.g. `P12M`.")]


class Localized(BaseModel):
    sv: Text(2000)  # type: ignore[valid-type]
    en: Text(2000)  # type: ignore[valid-type]


class RetentionRule(BaseModel):
    """When data collected for a purpose expires, and what happens to it then."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "clock": "after_relationship_end", "period": "P12M", "action": "delete",
        "description": {"sv": "12 månader efter att kundrelationen upphört", "en": "12 months after the customer relationship ends"}}]})

    clock: RetentionClock
    period: ISODuration | None = Field(default=None, description="Required for the `after_*` clocks; a grace period "
                                       "for `until_withdrawn`; not used by `bookkeeping` (end of the seventh year).")
    action: RetentionAction
    description: Localized

    @model_validator(mode="after")
    def _period_fits_clock(self) -> RetentionRule:
        if self.clock in (RetentionClock.after_collection, RetentionClock.after_relationship_end) and not self.period:
            raise ValueError(f"a period is required with the {self.clock.value} clock")
        if self.clock == RetentionClock.bookkeeping and self.period:
            raise ValueError("the bookkeeping clock has a fixed period (to the end of the seventh year)")
        return self


Categories = Annotated[list[Category], Field(min_length=1, max_length=len(Category))]


class PurposeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: Localized
    description: Localized
    legal_basis: LegalBasis
    retention: RetentionRule
    categories: list[Category]


class PurposeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "code": "courses", "name": {"sv": "Kurser och seminarier", "en": "Courses and seminars"},
        "description": {"sv": "Anmälan till och genomförande av kurser.", "en": "Signing up for and holding courses."},
        "legal_basis": "contract",
        "retention": {"clock": "after_collection", "period": "P24M", "action": "delete",
                      "description": {"sv": "24 månader efter insamling", "en": "24 months after collection"}},
        "categories": ["name", "email", "phone"]}]})

    code: PurposeCode
    name: Localized
    description: Localized
    legal_basis: LegalBasis
    retention: RetentionRule
    categories: Categories


class PurposeUpdate(BaseModel):
    """Fields to change; those left out stay as they are (null is not a value)."""

    model_config = ConfigDict(extra="forbid")

    name: Localized = None  # type: ignore[assignment]
    description: Localized = None  # type: ignore[assignment]
    legal_basis: LegalBasis = None  # type: ignore[assignment]
    retention: RetentionRule = None  # type: ignore[assignment]
    categories: Categories = None  # type: ignore[assignment]


class PurposeList(BaseModel):
    items: list[PurposeRead]


class SupervisoryAuthority(BaseModel):
    name: str
    former_name: str
    website: str
    email: str
    address: str


class ControllerRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "WeSafe IT", "contact_email": "dataskydd@wesafe.se", "website": "https://www.wesafe.se",
        "supervisory_authority": {"name": "Integritetsskyddsmyndigheten (IMY)", "former_name": "Datainspektionen",
                                  "website": "https://www.imy.se", "email": "imy@imy.se",
                                  "address": "Box 8114, 104 20 Stockholm, Sweden"}}]})

    name: str
    contact_email: str
    website: str
    supervisory_authority: SupervisoryAuthority


_SECTION_ID = r"^[a-z][a-z0-9_-]{0,63}$"


class PolicySection(BaseModel):
    id: Annotated[str, Field(pattern=_SECTION_ID)]
    title: Text(200)  # type: ignore[valid-type]
    body: Text(20000)  # type: ignore[valid-type]


Sections = Annotated[list[PolicySection], Field(min_length=1, max_length=50)]


class PolicySections(BaseModel):
    sv: Sections
    en: Sections

    @model_validator(mode="after")
    def _same_sections(self) -> PolicySections:
        sv_ids, en_ids = [s.id for s in self.sv], [s.id for s in self.en]
        if len(set(sv_ids)) != len(sv_ids):
            raise ValueError("section ids must be unique")
        if sv_ids != en_ids:
            raise ValueError("the Swedish and English texts must have the same sections in the same order")
        return self


class PolicyPublish(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "version": "2027-01", "effective_from": "2027-01-01T00:00:00Z",
        "sections": {"sv": [{"id": "controller", "title": "Personuppgiftsansvarig", "body": "WeSafe IT ..."}],
                     "en": [{"id": "controller", "title": "Controller", "body": "WeSafe IT ..."}]}}]})

    version: PolicyVersionId
    effective_from: UTCTimestamp | None = Field(default=None, description="Defaults to now; never in the past.")
    sections: PolicySections


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

