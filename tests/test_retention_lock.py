"""One real retention run at a time, held by a lock its process loses the moment it dies (PostgreSQL's
session-level advisory lock; on SQLite a file lock beside the database): `privacy retention run` killed with
SIGKILL mid-run does not block the next, which resumes from the dead run's cursor; a second run while one is
under way is a clean 409 (API) or one line (CLI), however long the first one's batch has been running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.retention.models import RetentionRun
from tests.support import ADMIN, assert_problem, make_subject


def cli_env(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "PRIVACY_DATABASE_URL": database_url,
        "PRIVACY_RECEIPT_KEY_FILE": str(tmp_path / "r.pem"),
        "PRIVACY_LOG_LEVEL": "WARNING",
        "PRIVACY_ENV": "test",
        **settings,
    }


async def privacy(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def slow_run(database_url: str, tmp_path: Path) -> asyncio.subprocess.Process:
    """A real sweep of one subject per batch, pausing 1 s after each (PRIVACY_RETENTION_PAUSE_SECONDS)."""
    return await privacy(
        cli_env(database_url, tmp_path, PRIVACY_RETENTION_PAUSE_SECONDS="1"),
        "retention",
        "run",
        "--batch-size",
        "1",
    )


async def running_real_run(db, process: asyncio.subprocess.Process, *, scanned: int = 2) -> RetentionRun:
    """The real run under way, once it has got through `scanned` subjects."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.returncode is None, (await process.communicate())[1].decode()
        async with db() as session:
            run = (
                (
                    await session.execute(
                        select(RetentionRun).where(
                            RetentionRun.status == "running",
                            RetentionRun.dry_run.is_(False),
                            RetentionRun.subjects_scanned >= scanned,
                        )
                    )
                )
                .scalars()
                .first()
            )
        if run is not None:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not get going")


async def stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.communicate()


@pytest.fixture
async def subjects(client) -> None:
    """Enough subjects for a slow run to take a few seconds."""
    for _ in range(8):
        await make_subject(client)


async def test_a_killed_run_does_not_block_the_next_which_resumes_where_it_stopped(
    client, db, database_url, tmp_path, subjects
):
    process = await slow_run(database_url, tmp_path)
    try:
        dead = await running_real_run(db, process)
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    finally:
        await stop(process)
    async with db() as session:
        dead = await session.get(RetentionRun, dead.id, populate_existing=True)  # where it was when it died
    assert dead.status == "running"

    began = time.monotonic()
    rerun = await privacy(cli_env(database_url, tmp_path), "retention", "run")
    out, err = await asyncio.wait_for(rerun.communicate(), timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert time.monotonic() - began < 60  # not the ten minutes a dead run used to block reruns for
    result = json.loads(out)
    assert result["status"] == "completed" and result["resumed_from"] == str(dead.id)
    assert result["subjects_scanned"] > dead.subjects_scanned  # its count carries on from the dead run's
    assert f"resuming retention run {dead.id}" in err.decode()
    async with db() as session:
        interrupted = await session.get(RetentionRun, dead.id, populate_existing=True)
        resumed = await session.get(RetentionRun, uuid.UUID(result["run_id"]), populate_existing=True)
    assert interrupted.status == "interrupted" and interrupted.finished_at is not None
    assert resumed.resumed_from == dead.id

    # Through the API too: the next run starts at once (nothing is left to resume).
    started = await client.post("/v1/retention/runs", json={"dry_run": False}, headers=ADMIN)
    assert started.status_code == 202, started.text
    finished = (await client.get(f"/v1/retention/runs/{started.json()['id']}", headers=ADMIN)).json()
    assert finished["status"] == "completed" and finished["resumed_from"] is None


async def test_a_second_run_while_one_is_under_way_is_refused_cleanly(
    client, db, database_url, tmp_path, subjects
):
    process = await slow_run(database_url, tmp_path)
    try:
        live = await running_real_run(db, process)
        # Its batch has gone on for longer than the ten minutes after which a run used to count as dead.
        async with db() as session:
            await session.execute(
                update(RetentionRun)
                .where(RetentionRun.id == live.id)
                .values(updated_at=datetime.now(UTC) - timedelta(minutes=11))
            )
            await session.commit()

        refused = await client.post("/v1/retention/runs", json={"dry_run": False}, headers=ADMIN)
        assert assert_problem(refused, 409)["run_id"] == str(live.id)
        assert (
            await client.post("/v1/retention/runs", json={"dry_run": True}, headers=ADMIN)
        ).status_code == 202

        second = await privacy(cli_env(database_url, tmp_path), "retention", "run")
        out, err = await asyncio.wait_for(second.communicate(), timeout=60)
        assert second.returncode == 1 and out == b""
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err.decode(), err.decode()
        assert "already under way" in lines[0] and str(live.id) in lines[0]
        assert process.returncode is None  # the first one went on
        async with db() as session:
            assert (await session.get(RetentionRun, live.id, populate_existing=True)).status == "running"
    finally:
        await stop(process)
    tidy = await privacy(cli_env(database_url, tmp_path), "retention", "run")  # finishes what the kill left
    assert (await asyncio.wait_for(tidy.communicate(), timeout=120)) and tidy.returncode == 0
