from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.core.types import UTCTimestamp


class RunStatus(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    interrupted = "interrupted"  # stopped without finishing (its process stopped); running again is safe


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"dry_run": True}]})

    dry_run: StrictBool = Field(default=False, description="Report what would happen; change nothing.")


class ActionCount(BaseModel):
    purpose: str
    category: str
    action: str
    count: int


class KeptCount(BaseModel):
    purpose: str
    category: str
    rule: str = Field(description="The rule that keeps the items, e.g. `after_relationship_end P12M delete`.")
    reason: str = Field(
        description="Why they are kept now: not yet expired, relationship ongoing, consent granted, legal "
        "hold."
    )
    count: int


class Report(BaseModel):
    actions: list[ActionCount] = []
    kept: list[KeptCount] = []
    subjects: dict[str, int] = Field(default_factory=dict, description="scanned, held, anonymized.")
    purged: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Operational records past their windows, deleted at the end of the run (counted only, in a dry "
            "run): idempotency_keys, login_attempts, login_codes, privacy_center_sessions (ended or idle), "
            "and visitor_consent_events (the evidence of visitors' cookie choices, past the "
            "`consent_records` purpose's rule)."
        ),
    )


class RunRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "dry_run": False,
                    "status": "completed",
                    "requested_by": "staff:dpo",
                    "started_at": "2026-11-25T02:00:00Z",
                    "updated_at": "2026-11-25T02:03:10Z",
                    "finished_at": "2026-11-25T02:03:10Z",
                    "subjects_scanned": 1000,
                    "items_scanned": 10000,
                    "error": None,
                    "resumed_from": None,
                    "report": {
                        "actions": [
                            {
                                "purpose": "analytics",
                                "category": "ip_address",
                                "action": "delete",
                                "count": 812,
                            }
                        ],
                        "kept": [
                            {
                                "purpose": "billing",
                                "category": "payment",
                                "rule": "bookkeeping delete",
                                "reason": "not yet expired",
                                "count": 940,
                            }
                        ],
                        "subjects": {"scanned": 1000, "held": 2, "anonymized": 31},
                        "purged": {
                            "idempotency_keys": 5210,
                            "login_attempts": 388,
                            "login_codes": 41,
                            "privacy_center_sessions": 17,
                            "visitor_consent_events": 1290,
                        },
                    },
                }
            ]
        },
    )

    id: uuid.UUID
    dry_run: bool
    status: str = Field(
        description="running, completed, failed, or interrupted (stopped without finishing; running again "
        "is safe, and a real run whose process died is resumed from its cursor by the next one)."
    )
    requested_by: str
    started_at: UTCTimestamp
    updated_at: UTCTimestamp
    finished_at: UTCTimestamp | None
    subjects_scanned: int
    items_scanned: int
    report: Report
    error: str | None
    resumed_from: uuid.UUID | None = Field(
        default=None,
        description="The run whose process died and whose cursor, counts and report this run carried on "
        "from; null for a run that started from the beginning.",
    )
