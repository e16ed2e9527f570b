"""Visitor consents' API models: a cookie choice as the banner sends it, and the state it answers with."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.catalog.schemas import Language, PolicyVersionId
from app.core.types import Text2000, Text10000, UTCTimestamp

VisitorId = Annotated[
    str,
    Field(
        max_length=64,
        description="The opaque id the service issued the device (128 random bits, base64url).",
        examples=["q3Jd0m8xT2u4pW1sZk9aBg"],
    ),
]


class VisitorMethod(StrEnum):
    explicit = "explicit"  # the visitor's own choice in the banner
    gpc = "gpc"  # the browser sent Global Privacy Control: what it covers was refused, whatever was clicked
    subject = (
        "subject"  # the linked subject's newer consent (say, withdrawn in the CRM), applied to the device
    )


class Choices(BaseModel):
    """The categories the visitor allows; one left out is refused. `necessary` needs no choice."""

    model_config = ConfigDict(extra="forbid")

    preferences: StrictBool = False
    analytics: StrictBool = False
    marketing: StrictBool = False


class CategoryChoices(BaseModel):
    necessary: bool = True
    preferences: bool
    analytics: bool
    marketing: bool


class VisitorConsentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "choices": {"preferences": True, "analytics": True, "marketing": False},
                    "notice_version": "2026-11-28",
                    "language": "sv",
                    "text_shown": "Vi använder cookies ... [Godkänn alla] [Neka alla] [Inställningar]",
                    "page_url": "https://www.wesafe.se/tjanster",
                }
            ]
        },
    )

    visitor_id: VisitorId | None = Field(
        default=None, description="The id this device holds; without one (or unknown, or expired) a new one."
    )
    choices: Choices
    notice_version: PolicyVersionId | None = Field(
        default=None, description="The notice version the banner showed; by default the one in force."
    )
    language: Language = "sv"
    text_shown: Text10000 | None = Field(default=None, description="The banner's wording as shown.")
    page_url: Text2000 | None = Field(default=None, description="The page the choice was made on.")


class VisitorConsentRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "visitor_id": "q3Jd0m8xT2u4pW1sZk9aBg",
                    "choices": {
                        "necessary": True,
                        "preferences": True,
                        "analytics": True,
                        "marketing": False,
                    },
                    "gpc": False,
                    "method": "explicit",
                    "notice_version": "2026-11-28",
                    "language": "sv",
                    "recorded_at": "2026-11-28T10:00:00Z",
                    "expires_at": "2027-11-28T10:00:00Z",
                    "receipt": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiJ9.eyJ...In0.sig",
                }
            ]
        }
    )

    visitor_id: str = Field(description="Keep it: the device's id for its later choices.")
    choices: CategoryChoices
    gpc: bool = Field(description="Global Privacy Control was honoured: analytics and marketing refused.")
    method: VisitorMethod
    notice_version: str
    language: Language
    recorded_at: UTCTimestamp
    expires_at: UTCTimestamp = Field(description="When the banner asks again (12 months after the choice).")
    receipt: str = Field(description="The choice as a signed consent receipt (ES256; keys at the JWKS).")
