"""`privacy worker` under database faults (issue 17, item 17): the worker runs as its own process on a private
PostgreSQL cluster (tests/pgcluster.py) that the test stops and starts again under it. The worker must log,
back off, carry on, and deliver what is enqueued after the database is back.

These run in the PostgreSQL run of the suite (or with PRIVACY_FAULT_TESTS=1): see tests/pgcluster.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests import pgcluster
from tests.pgcluster import Cluster
from tests.support import ADMIN, app_settings, make_subject, staff
from tests.test_webhooks import Receiver

pytestmark = pgcluster.needs_cluster
pg_cluster = pgcluster.pg_cluster  # the fixture


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def database_on_cluster(pg_cluster: Cluster) -> str:
    return pg_cluster.database(f"worker_{uuid.uuid4().hex[:8]}", migrated=True)


@pytest.fixture
async def api(database_on_cluster: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process on a fresh database of the cluster, loopback receivers allowed."""
    url = database_on_cluster
    application = create_app(
        app_settings(database_url=url, log_level="ERROR", webhook_allow_private_addresses=True)
    )
    async with application.router.lifespan_context(application), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://t", timeout=60
    ) as client:
        client.database_url = url  # type: ignore[attr-defined]
        yield client


def start_worker(database_url: str, folder: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PRIVACY_ENV": "test",
        "PRIVACY_DATABASE_URL": database_url,
        "PRIVACY_RECEIPT_KEY_FILE": str(folder / "r.pem"),
        "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        "PRIVACY_WORKER_BACKOFF_MAX_SECONDS": "1",
        "PRIVACY_LOG_LEVEL": "INFO",
    }
    with (folder / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--interval", "0.2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def grant(api: httpx.AsyncClient, subject_id: str) -> None:
    """A consent (an outbox event), tried again while the app still answers 503 after the restart."""
    deadline = time.monotonic() + 30
    while True:
        response = await api.post(
            f"/v1/subjects/{subject_id}/consents",
            headers=staff("consents:write"),
            json={"purpose": "newsletter", "status": "granted", "channel": "crm"},
        )
        if response.status_code == 201:
            return
        assert response.status_code == 503 and time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)


async def received(receiver: Receiver, count: int, *, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"{len(receiver.received)} of {count} webhooks arrived"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_the_worker_outlives_a_database_restart_and_delivers_what_comes_after(
    api, pg_cluster: Cluster, receiver: Receiver, tmp_path: Path, mode: str
):
    endpoint = await api.post(
        "/v1/webhook-endpoints", headers=ADMIN, json={"url": receiver.url, "event_types": ["consent.granted"]}
    )
    assert endpoint.status_code == 201, endpoint.text
    subject = await make_subject(api)
    worker = start_worker(api.database_url, tmp_path)
    log = tmp_path / "worker.log"
    try:
        await grant(api, subject["id"])
        await received(receiver, 1)

        await asyncio.to_thread(pg_cluster.stop, mode)  # type: ignore[arg-type]
        try:
            await asyncio.sleep(2)  # ten polls' worth of the database refusing connections
            lived = worker.poll() is None
        finally:
            await asyncio.to_thread(pg_cluster.start)  # whatever happened: the module's other tests need it
        assert lived, f"the worker exited ({worker.returncode}):\n{log.read_text()}"

        await grant(api, subject["id"])  # enqueued after the restart
        await received(receiver, 2)
        assert worker.poll() is None, log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            exit_code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert exit_code == 0, log.read_text()

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failures = [line for line in lines if line["msg"] == "webhook worker: round failed; retrying"]
    assert failures, log.read_text()
    assert "Traceback" not in log.read_text()  # one line each, no stack
    for failure in failures:
        assert failure["level"] == "warning" and failure["error"] and 0 < failure["retry_in_seconds"] <= 1
    assert any(line["msg"] == "webhook worker: recovered" for line in lines)
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 2
