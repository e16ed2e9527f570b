"""The controller, the purpose catalog and the privacy notice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.support import ADMIN, assert_problem, make_subject, staff


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_controller_names_imy(client):
    body = (await client.get("/v1/controller")).json()
    assert body["name"] == "WeSafe IT" and body["contact_email"] == "dataskydd@wesafe.se"
    assert body["supervisory_authority"]["former_name"] == "Datainspektionen"
    assert "imy.se" in body["supervisory_authority"]["website"]


async def test_default_catalog(client):
    items = {p["code"]: p for p in (await client.get("/v1/purposes")).json()["items"]}
    expected = {"service": "contract", "billing": "legal_obligation", "customer_support": "legitimate_interest",
                "marketing": "consent", "newsletter": "consent", "analytics": "consent"}
    assert {code: items[code]["legal_basis"] for code in expected} == expected
    billing = items["billing"]
    assert billing["retention"]["clock"] == "bookkeeping" and "payment" in billing["categories"]
    assert billing["name"]["sv"] and billing["name"]["en"] and billing["description"]["sv"]


def new_purpose(code: str) -> dict:
    return {"code": code, "name": {"sv": "Kurser", "en": "Courses"},
            "description": {"sv": "Kursanmälan.", "en": "Course sign-up."}, "legal_basis": "contract",
            "retention": {"clock": "after_collection", "period": "P24M", "action": "delete",
                          "description": {"sv": "24 månader", "en": "24 months"}},
            "categories": ["name", "email"]}


async def test_admin_adds_and_edits_purposes(client):
    code = f"courses_{uuid.uuid4().hex[:6]}"
    created = await client.post("/v1/purposes", json=new_purpose(code), headers=ADMIN)
    assert created.status_code == 201 and created.json()["code"] == code
    assert_problem(await client.post("/v1/purposes", json=new_purpose(code), headers=ADMIN), 409)

    patched = await client.patch(f"/v1/purposes/{code}", json={"legal_basis": "consent", "categories": ["email"]},
                                 headers=ADMIN)
    assert patched.status_code == 200
    assert patched.json()["legal_basis"] == "consent" and patched.json()["categories"] == ["email"]
    assert patched.json()["name"] == {"sv": "Kurser", "en": "Courses"}  # untouched fields stay
    assert (await client.get(f"/v1/purposes/{code}")).json() == patched.json()


async def test_purpose_edits_need_admin_and_valid_values(client):
    code = f"p_{uuid.uuid4().hex[:6]}"
    assert_problem(await client.post("/v1/purposes", json=new_purpose(code), headers=staff("subjects:write")), 403)
    assert_problem(await client.post("/v1/purposes", json=new_purpose(code)), 401)
    bad_retention = new_purpose(code) | {"retention": {"clock": "after_collection", "action": "delete",
                                                       "description": {"sv": "x", "en": "x"}}}
    assert_problem(await client.post("/v1/purposes", json=bad_retention, headers=ADMIN), 422)
    for period in ("P", "12M", "P1W", "PT1H"):
        rule = new_purpose(code)["retention"] | {"period": period}
        assert_problem(await client.post("/v1/purposes", json=new_purpose(code) | {"retention": rule},
                                         headers=ADMIN), 422)
    assert_problem(await client.post("/v1/purposes", json=new_purpose("Bad Code"), headers=ADMIN), 422)
    assert_problem(await client.patch("/v1/purposes/service", json={"name": None}, headers=ADMIN), 422)
    assert_problem(await client.patch("/v1/purposes/nope", json={"legal_basis": "consent"}, headers=ADMIN), 404)


async def test_current_notice_in_both_languages(client):
    current = (await client.get("/v1/policies/current", params={"lang": "en"})).json()
    assert current["language"] == "en" and current["sections"]
    # The first notice, from the data migration, covers what the policy promises.
    sv = (await client.get("/v1/policies/2026-11", params={"lang": "sv"})).json()
    en = (await client.get("/v1/policies/2026-11", params={"lang": "en"})).json()
    assert sv["language"] == "sv" and en["language"] == "en" and sv["version"] == en["version"]
    assert [s["id"] for s in sv["sections"]] == [s["id"] for s in en["sections"]]
    text = " ".join(s["body"] for s in sv["sections"])
    assert "IMY" in text and "dataskydd@wesafe.se" in text
    for topic in ("controller", "categories", "sources", "purposes", "recipients", "retention", "rights", "complaints"):
        assert topic in [s["id"] for s in sv["sections"]]
    assert_problem(await client.get("/v1/policies/current", params={"lang": "de"}), 422)


def notice(version: str, effective_from: datetime | None) -> dict:
    body = {"version": version,
            "sections": [{"id": "controller", "title": {"sv": "Ansvarig", "en": "Controller"},
                          "body": {"sv": f"Version {version}", "en": f"Version {version}"}}]}
    if effective_from:
        body["effective_from"] = iso(effective_from)
    return body


async def test_publishing_keeps_old_versions_and_schedules_new_ones(client):
    before = (await client.get("/v1/policies/current")).json()["version"]
    future = f"f-{uuid.uuid4().hex[:8]}"
    scheduled = await client.post("/v1/policies", json=notice(future, datetime.now(UTC) + timedelta(days=30)),
                                  headers=ADMIN)
    assert scheduled.status_code == 201 and scheduled.json()["version"] == future
    assert (await client.get("/v1/policies/current")).json()["version"] == before  # not yet in force

    now = f"n-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/v1/policies", json=notice(now, None), headers=ADMIN)).status_code == 201
    current = (await client.get("/v1/policies/current", params={"lang": "en"})).json()
    assert current["version"] == now and current["sections"][0]["body"] == f"Version {now}"
    old = await client.get(f"/v1/policies/{before}", params={"lang": "sv"})
    assert old.status_code == 200 and old.json()["version"] == before
    versions = [p["version"] for p in (await client.get("/v1/policies")).json()["items"]]
    assert {before, now, future} <= set(versions)


async def test_publishing_rules(client):
    version = f"r-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/v1/policies", json=notice(version, None), headers=ADMIN)).status_code == 201
    assert_problem(await client.post("/v1/policies", json=notice(version, None), headers=ADMIN), 409)
    past = notice(f"p-{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(days=2))
    assert_problem(await client.post("/v1/policies", json=past, headers=ADMIN), 422)
    duplicated = notice(f"d-{uuid.uuid4().hex[:8]}", None)
    duplicated["sections"] *= 2
    assert_problem(await client.post("/v1/policies", json=duplicated, headers=ADMIN), 422)
    one_language = notice(f"o-{uuid.uuid4().hex[:8]}", None)
    del one_language["sections"][0]["body"]["en"]
    assert_problem(await client.post("/v1/policies", json=one_language, headers=ADMIN), 422)
    assert_problem(await client.post("/v1/policies", json=notice("x1", None), headers=staff("consents:write")), 403)
    assert_problem(await client.get("/v1/policies/never-published"), 404)


# --- each worker's cached copy of the catalog ----------------------------------------------------------------


@pytest.fixture
async def other_worker(settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second app on the same database: another worker, with a catalog cache of its own."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker-2") as http:
            yield application, http


def consent_purpose(code: str) -> dict:
    return new_purpose(code) | {"legal_basis": "consent", "categories": ["email"]}


async def test_a_catalog_change_through_one_worker_is_seen_by_the_next_write_of_another(client, other_worker):
    _, worker = other_worker
    code = f"events_{uuid.uuid4().hex[:6]}"
    assert (await client.post("/v1/purposes", json=consent_purpose(code), headers=ADMIN)).status_code == 201
    subject = await make_subject(client)
    writes = staff("consents:write")
    grant = {"purpose": code, "status": "granted", "channel": "web"}
    recorded = await worker.post(f"/v1/subjects/{subject['id']}/consents", json=grant, headers=writes)
    assert recorded.status_code == 201  # the other worker's cache now holds the purpose as a consent purpose

    changed = await client.patch(f"/v1/purposes/{code}", json={"legal_basis": "contract"}, headers=ADMIN)
    assert changed.status_code == 200
    refused = await worker.post(f"/v1/subjects/{subject['id']}/consents", json=grant, headers=writes)
    assert assert_problem(refused, 422)["title"] == "Not a consent purpose"

    await client.patch(f"/v1/purposes/{code}", json={"legal_basis": "consent", "gpc": True}, headers=ADMIN)
    signalled = await worker.post(f"/v1/subjects/{subject['id']}/consents", json=grant,
                                  headers=writes | {"Sec-GPC": "1"})
    assert signalled.status_code == 201 and signalled.json()["method"] == "gpc"  # the new flag, at once


async def test_a_worker_drops_its_copy_when_postgresql_tells_it_of_a_change(client, other_worker, settings):
    if settings.is_sqlite:
        pytest.skip("PostgreSQL: SQLite has no notifications; each use checks the version counter instead")
    app, worker = other_worker
    subject = await make_subject(client)
    await worker.post(f"/v1/subjects/{subject['id']}/consents", headers=staff("consents:write"),
                      json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    cache = app.state.runtime.catalog
    for _ in range(50):  # the listener connects in the background (and drops the copy when it does)
        if cache.listening and cache.cached_version is not None:
            break
        if cache.listening:
            await worker.get("/v1/purposes")  # read it again, now that notifications will reach it
        await asyncio.sleep(0.1)
    assert cache.listening and cache.cached_version is not None
    code = f"notified_{uuid.uuid4().hex[:6]}"
    assert (await client.post("/v1/purposes", json=new_purpose(code), headers=ADMIN)).status_code == 201
    for _ in range(50):
        if cache.cached_version is None:
            break
        await asyncio.sleep(0.1)
    assert cache.cached_version is None  # dropped by the notification, not by a read


async def test_the_writing_worker_reads_its_own_change_at_once(other_worker):
    """A worker that listens for notifications (PostgreSQL) reads its cached copy without checking the counter;
    its own change must not wait for the notification's round trip: the copy goes when the change commits."""
    app, worker = other_worker
    cache = app.state.runtime.catalog
    listening, cache.listening = cache.listening, True  # as if listening, with no notification ever arriving
    try:
        await worker.get("/v1/cookies")
        assert cache.cached_version is not None
        name = f"_own_{uuid.uuid4().hex[:8]}"
        body = {"name": name, "provider": "WeSafe", "category": "preferences",
                "duration": {"sv": "1 dag", "en": "1 day"}, "description": {"sv": "Prov.", "en": "A test."}}
        created = await worker.post("/v1/cookies", json=body, headers=ADMIN)
        assert name in {c["name"] for c in (await worker.get("/v1/cookies")).json()["cookies"]}
        assert (await worker.delete(f"/v1/cookies/{created.json()['id']}", headers=ADMIN)).status_code == 204
        assert name not in {c["name"] for c in (await worker.get("/v1/cookies")).json()["cookies"]}
    finally:
        cache.listening = listening
