from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schemas import PurposeCode
from app.core.types import Text2000, Text5000, UTCTimestamp


class RequestType(StrEnum):
    access = "access"
    rectification = "rectification"
    erasure = "erasure"
    restriction = "restriction"
    objection = "objection"
    portability = "portability"


class RequestStatus(StrEnum):
    received = "received"
    verified = "verified"
    in_progress = "in_progress"
    completed = "completed"
    rejected = "rejected"


class Action(StrEnum):
    verify = "verify"
    start = "start"
    complete = "complete"
    reject = "reject"
    extend = "extend"


OPEN = frozenset({RequestStatus.received, RequestStatus.verified, RequestStatus.in_progress})


class RequestCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "type": "erasure",
                    "details": "Please delete everything you hold about me.",
                },
                {"type": "objection", "purpose": "customer_support"},
            ]
        },
    )

    subject_id: uuid.UUID | None = Field(
        default=None, description="A subject filing for itself may leave it out."
    )
    type: RequestType
    details: Text5000 | None = None
    purpose: PurposeCode | None = Field(
        default=None, description="Required for an objection: what it objects to."
    )


class Move(BaseModel):
    """verify, start or complete: no reason needed (one may be given)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"action": "verify"}]})

    action: Literal[Action.verify, Action.start, Action.complete]
    reason: Text2000 | None = None


class ReasonedAction(BaseModel):
    """reject or extend: the reason is required, and the subject is told it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "extend", "reason": "The request covers ten years of correspondence."},
                {"action": "reject", "reason": "We could not verify the requester's identity."},
            ]
        },
    )

    action: Literal[Action.reject, Action.extend]
    reason: Text2000


ActionRequest = Annotated[Move | ReasonedAction, Field(discriminator="action")]


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: UTCTimestamp
    actor: str
    role: str
    action: str
    from_status: str | None
    to_status: str
    reason: str | None


class RightToComplain(BaseModel):
    sv: str
    en: str
    authority: str
    website: str


class RequestRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "8b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d",
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "requester_email": None,
                    "type": "erasure",
                    "status": "received",
                    "details": None,
                    "purpose": None,
                    "received_at": "2026-01-31T10:00:00Z",
                    "due_at": "2026-02-28T10:00:00Z",
                    "extended": False,
                    "overdue": False,
                    "closed_at": None,
                    "rejection_reason": None,
                    "right_to_complain": None,
                    "history": [
                        {
                            "at": "2026-01-31T10:00:00Z",
                            "actor": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                            "role": "subject",
                            "action": "filed",
                            "from_status": None,
                            "to_status": "received",
                            "reason": None,
                        }
                    ],
                }
            ]
        }
    )

    id: uuid.UUID
    subject_id: uuid.UUID | None = Field(
        description="The subject the request is about; null for a request filed by a person who is not "
        "registered, matched to no subject."
    )
    requester_email: str | None = Field(
        description="Set only for a request matched to no subject: the address its requester proved they "
        "hold, where the answers go. Shown to staff (a subject never sees such a request)."
    )
    type: RequestType
    status: RequestStatus
    details: str | None
    purpose: str | None
    received_at: UTCTimestamp
    due_at: UTCTimestamp = Field(
        description="One calendar month after receipt (Swedish time; 31 January → "
        "28/29 February), three after an extension."
    )
    extended: bool
    overdue: bool
    closed_at: UTCTimestamp | None
    rejection_reason: str | None
    right_to_complain: RightToComplain | None = Field(
        description="Set on a rejection: the subject may complain to IMY."
    )
    history: list[HistoryEntry]


PackageFormat = Literal["json", "csv", "html"]
