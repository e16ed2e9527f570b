from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from app.core.types import Email, Text40, Text200, UTCTimestamp, reject_null, untitled_refs
from app.subjects.schemas import ContactProof


class MarketingChannel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"


class OptOutChannel(StrEnum):
    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"
    all = "all"


class OptOutSource(StrEnum):
    """Who or what opted a contact out."""

    staff = "staff"
    subject = "subject"
    unsubscribe_link = "unsubscribe_link"
    objection = "objection"
    erasure = "erasure"


class ChannelState(StrEnum):
    allowed = "allowed"
    opted_out = "opted_out"


class CheckReason(StrEnum):
    """Why a contact may or may not receive marketing. A contact belongs to the subjects that verified it;
    several such owners must agree (`conflict` when they do not), and a contact that subjects merely recorded
    without verifying it belongs to nobody (`unverified_contact`)."""

    consent_granted = "consent_granted"
    opted_out = "opted_out"
    subject_erased = "subject_erased"
    subject_restricted = "subject_restricted"
    not_a_subject = "not_a_subject"
    no_consent = "no_consent"
    consent_withdrawn = "consent_withdrawn"
    invalid_contact = "invalid_contact"
    unverified_contact = "unverified_contact"
    conflict = "conflict"


Phone = Annotated[
    Text40,
    Field(
        description="Any common format; national numbers are Swedish (070-123 45 67 is +46701234567).",
        examples=["070-123 45 67"],
    ),
]


class Channels(BaseModel):
    email: ChannelState
    sms: ChannelState
    phone: ChannelState
    post: ChannelState


class MarketingRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"channels": {"email": "opted_out", "sms": "allowed", "phone": "allowed", "post": "allowed"}}
            ]
        }
    )

    channels: Channels


class ChannelsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=untitled_refs)

    email: ChannelState | SkipJsonSchema[None] = None
    sms: ChannelState | SkipJsonSchema[None] = None
    phone: ChannelState | SkipJsonSchema[None] = None
    post: ChannelState | SkipJsonSchema[None] = None

    _given = field_validator("*", mode="before")(reject_null)


class MarketingUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"channels": {"email": "opted_out"}}]}
    )

    channels: ChannelsUpdate = Field(description="Channels not named stay as they are.")


class _Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _some_contact(self) -> _Contact:
        if self.email is None and self.phone is None:
            raise ValueError("give an email, a phone, or both")
        return self


class OptOutCreate(_Contact):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "someone@example.se", "channel": "all"},
                {"phone": "070-123 45 67", "channel": "sms"},
            ]
        },
    )

    channel: OptOutChannel


class OptOutRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str = Field(
        description="`email` or `phone`: which contact the opt-out holds (as a keyed hash only)."
    )
    channel: OptOutChannel
    created_at: UTCTimestamp


class OptOutList(BaseModel):
    items: list[OptOutRead]


class CheckContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Text40 | None = None
    channel: MarketingChannel


class CheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contacts": [
                        {"email": "anna.svensson@example.se", "channel": "email"},
                        {"phone": "+46701234567", "channel": "sms"},
                    ]
                }
            ]
        },
    )

    contacts: list[CheckContact] = Field(min_length=1, max_length=1000)


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)  # shared: one instance per reason

    allowed: bool
    reason: CheckReason


class CheckResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"allowed": True, "reason": "consent_granted"},
                        {"allowed": False, "reason": "opted_out"},
                    ]
                }
            ]
        }
    )

    results: list[CheckResult] = Field(description="In the order of the contacts asked about.")


class UnsubscribeLinkCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "anna.svensson@example.se"}]}
    )

    email: Email


class UnsubscribeLink(BaseModel):
    url: str = Field(
        description="Put it in the e-mail's List-Unsubscribe header, with "
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)."
    )
    token: str


# --- whose contact it is: verification
# --------------------------------------------------------------------------------


class MarketingContactRead(BaseModel):
    """Whether the subject was shown to hold one of its e-mail addresses or phone numbers. Only verified
    contacts are its own for marketing: their opt-outs show in its channels, and only it can lift them."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "item_id": "0b8f5c1e-6a43-4d3e-9f1a-2c7d8e9f0a1b",
                    "kind": "email",
                    "verified": True,
                    "verified_at": "2026-11-29T10:00:00Z",
                    "verified_by": "code",
                }
            ]
        },
    )

    item_id: uuid.UUID = Field(
        description="The e-mail or phone data item. An item holding the registered address shares its "
        "verification."
    )
    kind: str = Field(description="`email` or `phone`.")
    verified: bool
    verified_at: UTCTimestamp | None
    verified_by: ContactProof | None = Field(
        description="`registration` (the address the subject was registered with), `login` (a login code "
        "sent to it came back), `code` (a verification code sent to it came back) or `staff` (with a "
        "recorded reason); null while not verified."
    )


class ContactCodeSent(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"detail": "A code is on its way to the address; it is valid for 10 minutes."}]
        }
    )

    detail: str


class ContactVerify(BaseModel):
    """The code mailed to the address (the subject, or staff it was read out to), or, for staff only, the
    reason they know the contact is the subject's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "123456"}, {"reason": "Confirmed by phone call, ticket 4711"}],
            # Exactly one of the two, said in the schema (as the validator below says it).
            "minProperties": 1,
            "maxProperties": 1,
        },
    )

    code: Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["123456"])] | SkipJsonSchema[None] = None
    reason: Annotated[Text200, Field(min_length=3)] | SkipJsonSchema[None] = None

    _given = field_validator("*", mode="before")(reject_null)

    @model_validator(mode="after")
    def _one_proof(self) -> ContactVerify:
        if (self.code is None) == (self.reason is None):
            raise ValueError("give either the code or (staff) a reason")
        return self
