"""Concurrent writers (issue 17, item 21): on SQLite, each process lets one transaction at a time in, in the
order they came (core.db._SqliteWriters), instead of SQLite's busy handler, whose polling let newcomers
overtake writers that had waited for seconds (with 16 writers: p50 30 ms, p99 2.1-2.6 s). The write tail
stays within a few times the median, on either database."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import _SqliteWriters
from tests.support import assert_problem, make_subject, staff

WRITER = staff("consents:write", "consents:read")


async def _timed_writes(client: httpx.AsyncClient, subject: str, count: int) -> list[tuple[float, int]]:
    timings = []
    for number in range(count):
        body = {"purpose": "newsletter", "status": ("granted", "withdrawn")[number % 2], "channel": "web"}
        started = time.monotonic()
        response = await client.post(f"/v1/subjects/{subject}/consents", json=body, headers=WRITER)
        timings.append((time.monotonic() - started, response.status_code))
    return timings


@pytest.mark.parametrize("writers", [4, 16])
async def test_the_write_tail_stays_near_the_median(client: httpx.AsyncClient, writers: int) -> None:
    subjects = [(await make_subject(client))["id"] for _ in range(writers)]
    each = max(60 // writers, 4) * 3
    results = await asyncio.gather(*[_timed_writes(client, s, each) for s in subjects])
    latencies = sorted(seconds for timings in results for seconds, _ in timings)
    assert {status for timings in results for _, status in timings} == {201}
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    # In line, every writer waits for the ones ahead of it: about `writers` writes, the median's double at
    # most. Polling, a few waited 20 to 60 times the median (p50 35 ms, p99 2.3 s with 16 writers). The bound
    # leaves room for one stall of the machine (a CI run once saw p50 196 ms, p99 1.3 s, in line).
    shown = f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1]:.2f} s"
    assert p99 <= 10 * p50 + 0.25, shown


@pytest.fixture
def sqlite_only(settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite: its transactions take turns per process")


async def _begin(db: async_sessionmaker[AsyncSession]) -> AsyncSession:
    session = db()
    await session.execute(text("SELECT 1"))  # begins: BEGIN IMMEDIATE, after its turn
    return session


async def test_a_writer_past_its_turns_wait_answers_503(
    sqlite_only: None, client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = (await make_subject(client))["id"]
    monkeypatch.setattr(_SqliteWriters, "TIMEOUT", 0.5)
    holder = await _begin(db)
    try:
        started = time.monotonic()
        response = await client.post(f"/v1/subjects/{subject}/consents", headers=WRITER,
                                     json={"purpose": "newsletter", "status": "granted", "channel": "web"})
        assert_problem(response, 503)
        assert response.headers["retry-after"]
        assert time.monotonic() - started < 5
    finally:
        await holder.close()
    response = await client.post(f"/v1/subjects/{subject}/consents", headers=WRITER,
                                 json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "invalidate"])
async def test_a_transaction_gives_its_turn_back_however_it_ends(
    sqlite_only: None, db: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    monkeypatch.setattr(_SqliteWriters, "TIMEOUT", 2)
    session = await _begin(db)
    if ending == "invalidate":
        await (await session.connection()).invalidate()
        await session.close()
    else:
        await getattr(session, ending)()
        if ending != "close":
            await session.close()
    started = time.monotonic()
    next_one = await _begin(db)  # would wait for the turn (2 s, then DatabaseUnavailable) if not given back
    await next_one.close()
    assert time.monotonic() - started < 1
