from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Text2000, UTCTimestamp


class HoldCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "Dispute over invoice 2026-114; legal claim expected.",
                    "ends_at": "2027-06-30T00:00:00Z",
                }
            ]
        },
    )

    reason: Text2000
    ends_at: UTCTimestamp | None = Field(
        default=None, description="When the hold ends by itself; none: until lifted."
    )


class HoldLift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text2000 | None = None


class HoldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject_id: uuid.UUID
    reason: str
    placed_at: UTCTimestamp
    placed_by: str
    ends_at: UTCTimestamp | None
    lifted_at: UTCTimestamp | None
    lifted_by: str | None
    lift_reason: str | None
    active: bool
