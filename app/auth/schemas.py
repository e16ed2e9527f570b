from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.auth.principals import Scope
from app.core.types import Email, Text200, UTCTimestamp
from app.visitors.schemas import VisitorId


class StaffClientCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "CRM",
                    "role": "staff",
                    "scopes": ["subjects:read", "subjects:write", "consents:read"],
                }
            ]
        },
    )

    name: Text200
    role: Literal["staff"]
    scopes: list[Scope] = Field(
        default_factory=list, max_length=len(Scope), description="The scopes its tokens carry."
    )


class ProcessorClientCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Mailing partner",
                    "role": "processor",
                    "processor_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                }
            ]
        },
    )

    name: Text200
    role: Literal["processor"]
    processor_id: uuid.UUID = Field(
        description="The processor this client acts as; its tokens carry it as `sub`."
    )


ClientCreate = Annotated[StaffClientCreate | ProcessorClientCreate, Field(discriminator="role")]


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True, validate_by_alias=True)

    client_id: uuid.UUID = Field(validation_alias="id")
    name: str
    role: str
    scopes: list[str]
    processor_id: uuid.UUID | None
    created_at: UTCTimestamp
    revoked_at: UTCTimestamp | None


class ClientCreated(ClientRead):
    client_secret: str = Field(description="Shown once; only its hash is stored.")


class TokenRequest(BaseModel):
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4), form-encoded."""

    # Checked by the service, not by validation, so that a wrong or missing grant type gets the OAuth error
    # (400 `unsupported_grant_type` / `invalid_request`) that OAuth clients understand.
    model_config = ConfigDict(json_schema_extra={"required": ["grant_type"]})

    grant_type: str | None = Field(
        default=None, max_length=100, json_schema_extra={"enum": ["client_credentials"]}
    )
    client_id: str | None = Field(default=None, max_length=100, description="Or send HTTP Basic credentials.")
    client_secret: str | None = Field(default=None, max_length=200)
    scope: str | None = Field(default=None, max_length=1000, description="A subset of the client's scopes.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str | None = None


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "anna.svensson@example.se"}]}
    )

    email: Email


class LoginVerify(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "anna.svensson@example.se", "code": "482913"}]},
    )

    email: Email
    code: str = Field(pattern=r"^[0-9]{6}$", description="The six digits from the e-mail.")
    visitor_id: VisitorId | None = Field(
        default=None,
        description="The website visitor id this device holds (POST /v1/visitor-consents): its cookie "
        "choices become the subject's consents (the newer wins), and the device stays linked to the subject.",
    )


class LoginSent(BaseModel):
    status: Literal["sent"] = "sent"
    detail: str = Field(description="The same answer whether or not the address is known.")
