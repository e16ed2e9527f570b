from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.security import Scope
from app.core.types import Text, UTCTimestamp


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "CRM", "role": "staff", "scopes": ["subjects:read", "subjects:write", "consents:read"]},
        {"name": "Mailing partner", "role": "processor", "processor_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}]})

    name: Text(200)  # type: ignore[valid-type]
    role: Literal["staff", "processor"]
    scopes: list[Scope] = Field(default_factory=list, max_length=len(Scope),
                                description="Staff clients only: the scopes its tokens carry.")
    processor_id: uuid.UUID | None = Field(default=None, description="Processor clients only: the processor it is.")

    @model_validator(mode="after")
    def _fits_role(self) -> ClientCreate:
        if self.role == "staff" and self.processor_id is not None:
            raise ValueError("a staff client has no processor_id")
        if self.role == "processor" and (self.processor_id is None or self.scopes):
            raise ValueError("a processor client needs processor_id and takes no scopes")
        return self


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

    grant_type: str | None = Field(default=None, max_length=100, examples=["client_credentials"])
    client_id: str | None = Field(default=None, max_length=100, description="Or send HTTP Basic credentials.")
    client_secret: str | None = Field(default=None, max_length=200)
    scope: str | None = Field(default=None, max_length=1000, description="A subset of the client's scopes.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str | None = None
