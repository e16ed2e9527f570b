"""Writing to the outbox. Delivery (signed webhooks) reads it; writers only append, in their transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import utc_now
from app.webhooks.models import OutboxEvent


async def emit(session: AsyncSession, event_type: str, payload: dict[str, Any], *,
               subject_id: uuid.UUID | None = None) -> None:
    await session.execute(insert(OutboxEvent).values(id=uuid.uuid4(), type=event_type, subject_id=subject_id,
                                                      payload=payload, created_at=utc_now()))
