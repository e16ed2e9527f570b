"""Retention runs: the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from app.core import sql
from app.core.sql import Insert
from app.retention.models import RetentionRun
from app.retention.schemas import RunStatus

_RUNS = sql.table_of(RetentionRun)
_INSERT = Insert(_RUNS, "run")


_PING = text("SELECT 1")


async def ping(connection: AsyncConnection) -> None:
    """A round trip on a connection of its own (the run lock's): raises if it broke."""
    await connection.execute(_PING)


async def interrupt_stale_dry_runs(session: AsyncSession, *, quiet_since: datetime, at: datetime) -> None:
    """Dry runs that stopped moving (their process stopped) are interrupted. (A real run holds the run lock,
    which tells a dead one at once.)"""
    await sql.modify(
        session,
        update(_RUNS)
        .where(
            _RUNS.c.status == RunStatus.running,
            _RUNS.c.dry_run.is_(True),
            _RUNS.c.updated_at < quiet_since,
        )
        .values(status=RunStatus.interrupted, finished_at=at),
    )


async def running(session: AsyncSession) -> uuid.UUID | None:
    """The real (not dry) run marked under way, the newest if several are."""
    row = (
        await session.execute(
            select(_RUNS.c.id)
            .where(_RUNS.c.status == RunStatus.running, _RUNS.c.dry_run.is_(False))
            .order_by(_RUNS.c.started_at.desc())
        )
    ).first()
    return row[0] if row else None


async def orphaned(session: AsyncSession) -> Sequence[RetentionRun]:
    """Real runs still marked running, newest first: read by the holder of the run lock, so their processes
    died without saying so."""
    statement = (
        select(RetentionRun)
        .where(col(RetentionRun.status) == RunStatus.running, col(RetentionRun.dry_run).is_(False))
        .order_by(col(RetentionRun.started_at).desc())
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT(values))


async def get(session: AsyncSession, run_id: uuid.UUID) -> RetentionRun | None:
    return await session.get(RetentionRun, run_id, populate_existing=True)


async def update_run(session: AsyncSession, run_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_RUNS).where(_RUNS.c.id == run_id).values(**changes))


async def list_runs(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[RetentionRun], str | None]:
    return await sql.paginate(
        session,
        select(RetentionRun),
        order=(RetentionRun.started_at, RetentionRun.id),
        limit=limit,
        cursor=cursor,
    )
