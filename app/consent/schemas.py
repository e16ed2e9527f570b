from __future__ import annotations

import uuid
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schemas import PolicyVersionId, PurposeCode
from app.core.types import Text1000, Text10000, UTCTimestamp


class ConsentStatus(StrEnum):
    granted = "granted"
    withdrawn = "withdrawn"


class Channel(StrEnum):
    web = "web"
    crm = "crm"
    email = "email"
    phone = "phone"
    in_person = "in_person"
    api = "api"


class ConsentMethod(StrEnum):
    explicit = "explicit"  # the subject's own choice, through the channel named
    gpc = "gpc"  # Global Privacy Control: the browser's Sec-GPC signal turned a grant into a withdrawal
    objection = "objection"  # withdrawn by an upheld objection to direct marketing
    erasure = "erasure"  # withdrawn when the subject was erased
    # withdrawn by an opt-out of every channel the purpose is sent by: an unsubscribe link (RFC 8058), or a
    # channel or contact opt-out by the subject or staff
    unsubscribe = "unsubscribe"


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ip: IPv4Address | IPv6Address | None = None
    user_agent: Text1000 | None = None
    text_shown: Text10000 | None = Field(default=None, description="The wording the subject agreed to.")


class ConsentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "purpose": "newsletter",
                    "status": "granted",
                    "channel": "web",
                    "occurred_at": "2026-11-25T10:00:00Z",
                    "evidence": {
                        "ip": "192.0.2.10",
                        "user_agent": "Mozilla/5.0",
                        "text_shown": "Ja, jag vill få WeSafes nyhetsbrev.",
                    },
                }
            ]
        },
    )

    purpose: PurposeCode
    status: ConsentStatus
    channel: Channel
    policy_version: PolicyVersionId | None = Field(
        default=None, description="Defaults to the notice in force."
    )
    occurred_at: UTCTimestamp | None = Field(
        default=None,
        description="When the subject chose; defaults to now. "
        "The latest occurred_at wins, whatever order events arrive in.",
    )
    evidence: Evidence | None = None


class ConsentEventRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "5b0e7c9a-3d2f-4e1a-8b6c-9d0e1f2a3b4c",
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "purpose": "newsletter",
                    "status": "granted",
                    "channel": "web",
                    "method": "explicit",
                    "policy_version": "2026-11",
                    "occurred_at": "2026-11-25T10:00:00Z",
                    "recorded_at": "2026-11-25T10:00:01Z",
                    "receipt": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiJ9.eyJ...In0.sig",
                }
            ]
        },
    )

    id: uuid.UUID
    subject_id: uuid.UUID
    purpose: str
    status: ConsentStatus
    channel: Channel
    method: ConsentMethod = Field(
        description="`explicit`: the subject's own choice. `gpc`: a Global Privacy Control signal turned "
        "a grant into a withdrawal. `objection`: an upheld objection to direct marketing. `erasure`: the "
        "subject was erased. `unsubscribe`: an opt-out of every channel the purpose is sent by (an "
        "unsubscribe link, or a channel or contact opt-out) withdrew it."
    )
    policy_version: str
    occurred_at: UTCTimestamp
    recorded_at: UTCTimestamp
    receipt: str = Field(
        description="Compact JWS (ES256), verifiable with GET /v1/consent-receipts/jwks.json."
    )


class EvidenceRead(BaseModel):
    ip: str | None
    user_agent: str | None
    text_shown: str | None
    visitor_id: str | None = Field(
        description="The website visitor (device) whose cookie choice this event carries over, if any."
    )

    @classmethod
    def of(cls, event: Any) -> EvidenceRead:
        """The evidence columns of a consent event."""
        return cls(
            ip=event.evidence_ip,
            user_agent=event.evidence_user_agent,
            text_shown=event.evidence_text_shown,
            visitor_id=event.evidence_visitor_id,
        )


class ConsentHistoryItem(ConsentEventRead):
    recorded_by: str
    evidence: EvidenceRead


class ConsentStateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    purpose: str
    status: ConsentStatus
    occurred_at: UTCTimestamp
    policy_version: str
    renewal_due: bool = Field(
        default=False,
        description="Granted under a notice version whose text about this purpose has since changed: ask "
        "the subject again. The consent stands until it is withdrawn.",
    )


class ConsentStateList(BaseModel):
    items: list[ConsentStateRead]
    next_cursor: None = Field(default=None, description="Always null: one item per purpose, never paged.")


class ReceiptMailed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "The receipt is on its way to the subject's address."}]}
    )

    detail: str


class JWKS(BaseModel):
    keys: list[dict[str, str]]
