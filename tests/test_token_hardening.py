"""Issue 17, item 14: the metrics need a staff token; the SQLite file is private to the service's user;
minting a client with a privileged scope is a privileged action in the audit trail. (A future `iat`:
test_auth.py.)"""

from __future__ import annotations

import asyncio
import stat
import uuid
from pathlib import Path

import httpx
import pytest

from app.core import migrate
from app.main import create_app
from tests.support import ADMIN, app_settings, as_processor, as_subject, assert_problem, staff, token

# --- /metrics -----------------------------------------------------------------------------------------------


async def test_metrics_need_a_token(client):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        refused = assert_problem(await client.get("/metrics", headers=headers), 401)
        assert refused["status"] == 401
        assert (
            (await client.get("/metrics", headers=headers)).headers["www-authenticate"].startswith("Bearer")
        )


async def test_metrics_are_not_for_subjects_or_processors(client):
    for headers in (as_subject(uuid.uuid4()), as_processor(uuid.uuid4())):
        assert_problem(await client.get("/metrics", headers=headers), 403)


@pytest.mark.parametrize("scopes", [(), ("subjects:read",), ("admin",), ("audit:read", "consents:read")])
async def test_metrics_answer_any_staff_token(client, scopes):
    response = await client.get("/metrics", headers=staff(*scopes))
    assert response.status_code == 200 and "privacy_http_requests_total" in response.text


async def test_a_scopeless_staff_client_reads_the_metrics_as_prometheus_would(client):
    """Prometheus's `oauth2` scrape option: client credentials at /v1/auth/token, then the bearer token."""
    registered = await client.post("/v1/clients", json={"name": "Prometheus", "role": "staff"}, headers=ADMIN)
    assert registered.status_code == 201, registered.text
    credentials = registered.json()
    issued = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert (await client.get("/metrics", headers=bearer)).status_code == 200
    assert_problem(await client.get("/v1/subjects", headers=bearer), 403)  # and nothing else


def test_the_document_says_what_the_metrics_need():
    operation = create_app(app_settings()).openapi()["paths"]["/metrics"]["get"]
    assert operation["x-roles"] == ["staff"]
    assert operation["security"] == [{"oauth2": []}]  # any staff token: no scope named
    assert "401" in operation["responses"] and "403" in operation["responses"]


async def test_liveness_and_readiness_stay_public(client):
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code in (200, 503)


# --- the SQLite file ----------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrating_creates_the_sqlite_file_readable_by_its_owner_alone(tmp_path):
    database = tmp_path / "privacy.db"
    migrate.upgrade(f"sqlite:///{database}")
    assert _mode(database) == 0o600


def test_the_app_creates_its_sqlite_file_and_journal_private(tmp_path):
    from app.core.db import create_engine

    fresh = tmp_path / "fresh.db"
    engine = create_engine(app_settings(database_url=f"sqlite:///{fresh}"))  # a file that is not there yet

    async def connect() -> None:
        async with engine.connect():
            pass
        await engine.dispose()

    asyncio.run(connect())
    assert _mode(fresh) == 0o600

    database = tmp_path / "second.db"
    migrate.upgrade(f"sqlite:///{database}")

    async def write() -> None:
        app = create_app(app_settings(database_url=f"sqlite:///{database}"))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            created = await http.post(
                "/v1/subjects", json={"email": "a@example.se", "name": "A"}, headers=staff("subjects:write")
            )
            assert created.status_code == 201, created.text
            files = [p for p in tmp_path.iterdir() if p.name.startswith("second.db")]
            assert {p.name for p in files} >= {"second.db", "second.db-wal"}
            for path in files:  # SQLite gives its -wal and -shm files the database file's mode
                assert _mode(path) == 0o600, (path.name, oct(_mode(path)))

    asyncio.run(write())


def test_an_existing_sqlite_file_keeps_the_mode_its_operator_gave_it(tmp_path):
    database = tmp_path / "shared.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    migrate.upgrade(f"sqlite:///{database}")
    assert _mode(database) == 0o640


# --- privileged clients -------------------------------------------------------------------------------------


async def _privileged_events(client) -> list[dict]:
    response = await client.get(
        "/v1/audit-events",
        params={"action": "client.privileged_scope_granted", "limit": 500},
        headers=staff("audit:read"),
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.mark.parametrize(
    ("scopes", "privileged"),
    [
        (["sensitive:read"], ["sensitive:read"]),
        (["subjects:read", "sensitive:read"], ["sensitive:read"]),
        (["admin"], ["admin"]),
        (["admin", "sensitive:read", "audit:read"], ["admin", "sensitive:read"]),
        (["subjects:read", "audit:read"], []),
        ([], []),
    ],
)
async def test_minting_a_client_with_a_privileged_scope_is_recorded_as_a_privileged_action(
    client, scopes, privileged
):
    admin = {"Authorization": f"Bearer {token('staff', 'alice-admin', 'admin')}"}
    created = await client.post(
        "/v1/clients", json={"name": "Billing", "role": "staff", "scopes": scopes}, headers=admin
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    mine = [e for e in await _privileged_events(client) if e["target"].startswith(client_id)]
    assert sorted(e["target"] for e in mine) == sorted(f"{client_id} {s}" for s in privileged)
    assert all(e["actor"] == "alice-admin" and e["role"] == "staff" for e in mine)
