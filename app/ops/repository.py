"""What readiness reads: the schema revision the database is at."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision (None when never migrated); raises when unreachable."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        row = (await connection.execute(text("SELECT version_num FROM alembic_version"))).first()
        return row[0] if row else None
