"""Database faults (issue 17, items 16 and 20, and the fault test under load): the app on a private PostgreSQL
cluster (tests/pgcluster.py) that the tests restart, crash and freeze. Only 2xx and 503 (problem+json, with
Retry-After) may answer while the database is away, never a 500; the service is back as soon as the database
is; and every write it acknowledged is there afterwards.

These run in the PostgreSQL run of the suite (or with PRIVACY_FAULT_TESTS=1): see tests/pgcluster.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests import pgcluster
from tests.pgcluster import Cluster
from tests.support import app_settings, live_server, make_subject, staff

pytestmark = pgcluster.needs_cluster
pg_cluster = pgcluster.pg_cluster  # the fixture

WRITER = staff("consents:write", "consents:read")
PURPOSES = ("newsletter", "marketing", "analytics")


@pytest.fixture(scope="module")
def cluster_database(pg_cluster: Cluster) -> str:
    return pg_cluster.database(f"faults_{uuid.uuid4().hex[:8]}", migrated=True)


@contextlib.asynccontextmanager
async def serving(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process on `database_url`, with `settings` over the tests' defaults."""
    application: FastAPI = create_app(app_settings(database_url=database_url, log_level="ERROR", **settings))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            yield client


@pytest.fixture
async def served(cluster_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(cluster_database) as client:
        yield client


async def consent(client: httpx.AsyncClient, subject_id: str, number: int) -> httpx.Response:
    body = {"purpose": PURPOSES[number % len(PURPOSES)], "status": ("granted", "withdrawn")[number % 2],
            "channel": "web"}
    return await client.post(f"/v1/subjects/{subject_id}/consents", json=body, headers=WRITER)


async def history(client: httpx.AsyncClient, subject_id: str) -> set[str]:
    """The ids of every consent event of the subject (all pages)."""
    found: set[str] = set()
    params: dict[str, Any] = {"limit": 500}
    while True:
        response = await client.get(f"/v1/subjects/{subject_id}/consents/history", params=params,
                                    headers=WRITER)
        assert response.status_code == 200, response.text
        page = response.json()
        found |= {item["id"] for item in page["items"]}
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0


async def fill_the_pool(client: httpx.AsyncClient, subjects: list[str]) -> set[str]:
    """Concurrent writes, so that the pool holds a connection per writer (as under real traffic)."""
    responses = await asyncio.gather(*[consent(client, s, n) for n, s in enumerate(subjects)])
    assert [r.status_code for r in responses] == [201] * len(subjects), [r.text for r in responses]
    return {r.json()["id"] for r in responses}


# --- item 16: after a restart, the pool is renewed at once ------------------------------------------------


@pytest.mark.parametrize("how", ["fast restart", "crash and start", "kill and start", "terminate"])
async def test_the_first_write_after_a_database_restart_succeeds(
    served: httpx.AsyncClient, pg_cluster: Cluster, cluster_database: str, how: str
) -> None:
    """However the server closed the pool's connections, the next request is served on a fresh one."""
    subjects = [(await make_subject(served))["id"] for _ in range(10)]
    acknowledged = await fill_the_pool(served, subjects)

    if how == "fast restart":
        pg_cluster.restart("fast")
    elif how == "crash and start":
        pg_cluster.restart("immediate")
    elif how == "kill and start":
        pg_cluster.kill()
        pg_cluster.start()
    else:  # an administrator ends every session of the database, the server stays up
        name = cluster_database.rsplit("/", 1)[1]
        pg_cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")

    # Every pooled connection is dead now; none of them may cost a request.
    statuses = []
    for number in range(12):
        response = await consent(served, subjects[number % len(subjects)], number + 1)
        statuses.append(response.status_code)
        if response.status_code == 201:
            acknowledged.add(response.json()["id"])
    assert statuses == [201] * 12, statuses
    # Reads too, on the SQLAlchemy path and the direct one.
    stored = set().union(*[await history(served, s) for s in subjects])
    assert acknowledged <= stored


# --- item 20: a hung database answers 503 soon -------------------------------------------------------


async def test_a_frozen_database_answers_503_within_the_timeouts(
    cluster_database: str, pg_cluster: Cluster
) -> None:
    async with serving(cluster_database, database_statement_timeout_seconds=1,
                       database_pool_timeout_seconds=1) as served:
        await _frozen_database_answers_503(served, pg_cluster)


async def _frozen_database_answers_503(served: httpx.AsyncClient, pg_cluster: Cluster) -> None:
    subject = (await make_subject(served))["id"]
    await fill_the_pool(served, [subject] * 4)

    # At worst: the pool wait (1 s), then a connection attempt (1 s) or a statement (1 s, and the client's
    # own second: a frozen server cancels nothing)
    bound = 4 + 2  # slack for a loaded machine
    with pg_cluster.frozen():
        started = time.monotonic()
        responses = await asyncio.gather(
            *[consent(served, subject, n) for n in range(6)],
            *[served.get(f"/v1/subjects/{subject}/consents", headers=WRITER) for _ in range(6)],
        )
        elapsed = time.monotonic() - started
        for response in responses:
            assert_unavailable(response)
        assert elapsed < bound, f"{elapsed:.1f} s"
        # The next ones too, as soon.
        started = time.monotonic()
        assert_unavailable(await consent(served, subject, 7))
        assert time.monotonic() - started < bound

    # Thawed: served again, at once.
    deadline = time.monotonic() + 10
    while (response := await consent(served, subject, 8)).status_code != 201:
        assert_unavailable(response)
        assert time.monotonic() < deadline, "not served again within 10 s of the thaw"
        await asyncio.sleep(0.2)


# --- item 15: more clients than the server takes ------------------------------------------------------


async def test_more_clients_than_the_server_takes_answer_503_never_500(
    cluster_database: str, pg_cluster: Cluster
) -> None:
    """max_connections 15 and a pool that would open 20: the connections the server refuses (SQLSTATE 53300,
    which asyncpg raises as a plain PostgresError) answer 503 with Retry-After; every write acknowledged is
    stored, and the service serves again once the clients are fewer."""
    async with serving(cluster_database) as served:
        subjects = [(await make_subject(served))["id"] for _ in range(40)]
    pg_cluster.psql("ALTER SYSTEM SET max_connections = 15")
    pg_cluster.restart("fast")
    try:
        async with serving(cluster_database, database_pool_size=20) as served:
            responses = await asyncio.gather(*[consent(served, s, n) for n, s in enumerate(subjects)])
            statuses = [r.status_code for r in responses]
            assert set(statuses) <= {201, 503}, [r.text for r in responses if r.status_code not in (201, 503)]
            assert 503 in statuses and 201 in statuses, statuses
            for response in responses:
                if response.status_code == 503:
                    assert_unavailable(response)
            acknowledged = {r.json()["id"] for r in responses if r.status_code == 201}
            assert (await consent(served, subjects[0], 41)).status_code == 201
            stored = set().union(*[await history(served, s) for s in subjects])
            assert acknowledged <= stored
    finally:
        pg_cluster.psql("ALTER SYSTEM RESET max_connections")
        pg_cluster.restart("fast")


# --- under load: a crash and a restart while clients write ---------------------------------------------


Entry = tuple[float, float, int, str]  # a request: sent, answered, status, the consent's id or the problem


async def _writer(client: httpx.AsyncClient, subject: str, until: float, log: list[Entry]) -> None:
    """Writes consent for `subject` until `until`, each request in `log`."""
    number = 0
    while time.monotonic() < until:
        number += 1
        sent = time.monotonic()
        response = await consent(client, subject, number)
        answered = time.monotonic()
        if response.status_code == 201:
            log.append((sent, answered, 201, response.json()["id"]))
        else:
            log.append((sent, answered, response.status_code, response.text))
            if response.status_code == 503:
                assert_unavailable(response)
            await asyncio.sleep(0.05)  # a client backing off (not for all of Retry-After: the test is short)


def test_a_crash_under_load_loses_no_acknowledged_write(pg_cluster: Cluster, tmp_path: Path) -> None:
    """Live uvicorn on the private cluster; 8 clients write for ~12 s; the cluster is crashed (immediate stop)
    3 s in and started again 1.5 s later. Only 201 and 503 answer, the service writes again within 5 s of the
    database being back, and every acknowledged consent is in the history afterwards."""
    url = pg_cluster.database(f"load_{uuid.uuid4().hex[:8]}", migrated=True)
    writers = 8
    with live_server(tmp_path, PRIVACY_DATABASE_URL=url, PRIVACY_DATABASE_STATEMENT_TIMEOUT_SECONDS="2",
                     PRIVACY_DATABASE_POOL_TIMEOUT_SECONDS="2", PRIVACY_LOG_LEVEL="ERROR") as server:

        async def scenario() -> tuple[list[Entry], float, float, dict[str, set[str]]]:
            log: list[Entry] = []
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                subjects = [(await make_subject(client))["id"] for _ in range(writers)]
                start = time.monotonic()
                load = [asyncio.create_task(_writer(client, s, start + 11, log)) for s in subjects]
                await asyncio.sleep(3)
                crashed = time.monotonic()
                await asyncio.to_thread(pg_cluster.stop, "immediate")
                await asyncio.sleep(1.5)
                await asyncio.to_thread(pg_cluster.start)
                back = time.monotonic()
                await asyncio.gather(*load)
                stored = {s: await history(client, s) for s in subjects}
            return log, crashed, back, stored

        began = time.monotonic()
        log, crashed, back, stored = asyncio.run(scenario())
        counts = sorted((status, sum(e[2] == status for e in log)) for status in {e[2] for e in log})
        print(f"scenario {time.monotonic() - began:.1f} s, crashed at {crashed - began:.1f} s, back at "
              f"{back - began:.1f} s; {len(log)} requests (status, count): {counts}; "
              f"slowest {max(e[1] - e[0] for e in log):.1f} s")  # shown if the test fails
        output = server.log.read_text(errors="replace")

    statuses = {status for *_, status, _ in log}
    assert statuses <= {201, 503}, [entry for entry in log if entry[2] not in (201, 503)][:3]
    assert "Traceback" not in output, output[-3000:]
    ok = [entry for entry in log if entry[2] == 201]
    before = [entry for entry in ok if entry[1] < crashed]
    after = [entry for entry in ok if entry[0] > back]
    assert len(before) >= writers and len(after) >= writers, (len(before), len(after))
    # Recovery: the first write after the database is back, and none failing 3 s after it.
    assert min(entry[1] for entry in after) - back < 5
    late_failures = [entry for entry in log if entry[0] > back + 3 and entry[2] != 201]
    assert late_failures == [], late_failures[:3]
    # Every acknowledged write is there.
    acknowledged = {entry[3] for entry in ok}
    assert acknowledged <= set().union(*stored.values()), len(acknowledged - set().union(*stored.values()))
