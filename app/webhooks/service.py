"""Writing to the outbox. Delivery (signed webhooks) reads it; writers only append, in their transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Write, execute_together, insert_template, template_values
from app.core.time import utc_now
from app.webhooks.models import OutboxEvent

_ANNOUNCE = insert_template(OutboxEvent.__table__, "outbox")


def event_statement(event_type: str, payload: dict[str, Any], *, subject_id: uuid.UUID | None = None) -> Write:
    """The insert that announces a change, for callers that run it with their own writes."""
    return _ANNOUNCE, template_values("outbox", {"id": uuid.uuid4(), "type": event_type, "subject_id": subject_id,
                                                 "payload": payload, "created_at": utc_now()})


async def emit(session: AsyncSession, event_type: str, payload: dict[str, Any], *,
               subject_id: uuid.UUID | None = None) -> None:
    await execute_together(session, [event_statement(event_type, payload, subject_id=subject_id)])
