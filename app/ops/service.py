"""Readiness: the database answers and its schema is at the migrations' head."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import DatabaseUnavailable
from app.ops import repository


async def readiness(engine: AsyncEngine, expected_revision: str) -> tuple[bool, str, str | None]:
    """(ready, the database's state, its schema revision)."""
    try:
        revision = await repository.schema_revision(engine)
    except (sa_exc.SQLAlchemyError, DatabaseUnavailable):
        return False, "unreachable", None
    return revision == expected_revision, "ok", revision
