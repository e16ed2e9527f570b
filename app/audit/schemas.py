from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from app.core.types import UTCTimestamp


class AuditEventRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8e5a7c-1f2d-4e3a-9b6c-5d4e3f2a1b0c",
                    "at": "2026-11-25T10:00:00Z",
                    "actor": "crm",
                    "role": "staff",
                    "action": "subject.read",
                    "subject_id": "7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "target": None,
                    "request_id": "5f0c2d8a9b3e4f61a7c8d9e0f1a2b3c4",
                }
            ]
        },
    )

    id: uuid.UUID
    at: UTCTimestamp
    actor: str
    role: str
    action: str
    subject_id: uuid.UUID | None
    target: str | None
    request_id: str | None
