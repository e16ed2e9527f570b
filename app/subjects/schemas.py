from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from app.catalog.schemas import Category, Language, PurposeCode, Source
from app.core.openapi import Problem
from app.core.types import Email, Text100, Text200, Text10000, UTCTimestamp


class SubjectStatus(StrEnum):
    active = "active"
    restricted = "restricted"
    erased = "erased"


class ContactProof(StrEnum):
    """How a subject was shown to hold one of its e-mail addresses or phone numbers."""

    registration = "registration"  # staff registered the subject with this address
    login = "login"  # a login code sent to it came back
    code = "code"  # a verification code sent to it came back
    staff = "staff"  # staff verified it, with a recorded reason


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # left out when absent, never null: no default to document


class DuplicateSubjectProblem(Problem):
    """The 409 of a registration whose e-mail address a subject already has: `existing_id` names it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "https://wesafe.se/problems/conflict",
                    "title": "A subject with this e-mail address exists",
                    "status": 409,
                    "detail": "A subject with this e-mail address already exists",
                    "instance": "/v1/subjects",
                    "request_id": "5f0c2d8a9b3e4f61a7c8d9e0f1a2b3c4",
                    "existing_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                }
            ]
        },
    )

    # Left out (never null) only by the rarer 409 of two registrations racing: retry, and it is named.
    existing_id: uuid.UUID | SkipJsonSchema[None] = Field(
        default=None,
        description="The subject that has the address.",
        json_schema_extra=_no_default,
    )


class SubjectCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "anna.svensson@example.se", "name": "Anna Svensson", "external_ref": "crm-10042"}
            ]
        },
    )

    email: Email
    name: Text200 | None = None
    external_ref: Text100 | None = Field(default=None, description="The subject's id in the calling system.")
    source: Source = Field(
        default=Source.direct,
        description="Where the subject's data came from. From the subject itself (every source but "
        "`public_register`): the notice in force is recorded as given at collection (GDPR Art. 13). From a "
        "`public_register`: the subject is owed the notice within one month (Art. 14(3)), listed at "
        "GET /v1/notice-deliveries/due.",
    )
    notice_language: Language = Field(
        default="sv", description="The language the notice was given (or is to be mailed) in."
    )


class SubjectRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "email": "anna.svensson@example.se",
                    "name": "Anna Svensson",
                    "external_ref": "crm-10042",
                    "status": "active",
                    "created_at": "2026-11-25T10:00:00Z",
                    "relationship_ended_at": None,
                }
            ]
        },
    )

    id: uuid.UUID
    email: str | None = Field(description="Null once the subject is erased.")
    name: str | None
    external_ref: str | None
    status: SubjectStatus
    created_at: UTCTimestamp
    relationship_ended_at: UTCTimestamp | None


class RelationshipEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ended_at: UTCTimestamp | None = Field(
        default=None, description="When the relationship ended; defaults to now, never in the future."
    )


class DataItemCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "payment",
                    "value": "4111 1111 1111 1111",
                    "source": "direct",
                    "purpose": "billing",
                },
                {"category": "phone", "value": "070-123 45 67", "source": "website", "purpose": "service"},
            ]
        },
    )

    category: Category
    value: Text10000
    source: Source
    purpose: PurposeCode


class DataItemUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"value": "Storgatan 1, 111 22 Stockholm"}]}
    )

    value: Text10000


class DataItemRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3e1f0a9b-8c7d-4e6f-a5b4-c3d2e1f0a9b8",
                    "category": "payment",
                    "value": "****1111",
                    "source": "direct",
                    "purpose": "billing",
                    "collected_at": "2026-11-25T10:00:00Z",
                    "updated_at": "2026-11-25T10:00:00Z",
                    "sensitive": True,
                }
            ]
        }
    )

    id: uuid.UUID
    category: Category
    value: str = Field(
        description="Sensitive categories are masked (at most the last 4 digits) "
        "unless the caller holds `sensitive:read`."
    )
    source: Source
    purpose: str
    collected_at: UTCTimestamp
    updated_at: UTCTimestamp
    sensitive: bool
    retained_until: UTCTimestamp | None = Field(
        default=None,
        description="Set when the subject was erased but the law obliges us to keep this item: until when.",
    )
    retention_reason: str | None = Field(default=None, description="Why the item is kept after erasure.")
