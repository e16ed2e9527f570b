"""Website visitors: the cookie declaration, their cookie choices with evidence and receipts, CORS for the
website's browsers, retention and erasure of the evidence."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from jose import jwt
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.time import utc_now
from app.main import create_app
from app.visitors.models import Visitor, VisitorConsentEvent
from tests.support import (
    ADMIN,
    STAFF_ALL,
    app_settings,
    as_subject,
    assert_problem,
    complete_request,
    make_subject,
    restore_cookie_categories,
    staff,
)
from tests.test_retention import sweep

SITE = "https://www.wesafe.se"


@pytest.fixture(autouse=True)
async def seeded_categories(client) -> None:
    await restore_cookie_categories(client)


@pytest.fixture
async def browser(app) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own: a client address no other test uses, so that the rate limit is this test's."""
    address = f"203.0.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"User-Agent": "Test/1"}) as b:
        b.address = address  # type: ignore[attr-defined]
        yield b


async def choose(browser, *, gpc: bool = False, **body) -> httpx.Response:
    body.setdefault("choices", {"analytics": True})
    return await browser.post("/v1/visitor-consents", json=body, headers={"Sec-GPC": "1"} if gpc else {})


# --- the declaration -------------------------------------------------------------------------------------------


async def test_the_declaration_lists_categories_and_cookies_in_each_language(client):
    sv, en = [(await client.get("/v1/cookies", params={"lang": lang})) for lang in ("sv", "en")]
    assert sv.status_code == en.status_code == 200
    assert sv.headers["cache-control"].startswith("public")
    categories = sv.json()["categories"]
    assert [c["code"] for c in categories] == ["necessary", "preferences", "analytics", "marketing"]
    assert [(c["required"], c["purpose"]) for c in categories] == [
        (True, None), (False, "preferences"), (False, "analytics"), (False, "marketing")]
    assert categories[0]["name"] == "Nödvändiga" and en.json()["categories"][0]["name"] == "Necessary"
    cookies = {c["name"]: c for c in sv.json()["cookies"]}
    assert cookies["wesafe_consent"]["category"] == "necessary"
    assert cookies["_pk_id.*"]["category"] == "analytics" and cookies["_pk_id.*"]["duration"] == "13 månader"
    current = (await client.get("/v1/policies/current")).json()
    assert sv.json()["notice_version"] == current["version"]
    cookie_notice = (await client.get("/v1/policies/2026-11-28")).json()  # says what the banner does
    assert any(s["id"] == "cookies" and "Global Privacy Control" in s["body"] for s in cookie_notice["sections"])
    assert_problem(await client.get("/v1/cookies", params={"lang": "de"}), 422)


async def test_admins_edit_the_declaration_and_every_edit_is_audited(client):
    name = f"_test_{uuid.uuid4().hex[:8]}"
    body = {"name": name, "provider": "WeSafe", "category": "preferences",
            "duration": {"sv": "1 dag", "en": "1 day"}, "description": {"sv": "Prov.", "en": "A test."}}
    assert_problem(await client.post("/v1/cookies", json=body, headers=staff("subjects:write")), 403)
    created = await client.post("/v1/cookies", json=body, headers=ADMIN)
    assert created.status_code == 201
    cookie_id = created.json()["id"]
    listed = {c["name"]: c for c in (await client.get("/v1/cookies?lang=en")).json()["cookies"]}
    assert listed[name]["duration"] == "1 day"  # the worker's cached copy was refreshed
    assert_problem(await client.post("/v1/cookies", json=body, headers=ADMIN), 409)

    changed = await client.patch(f"/v1/cookies/{cookie_id}", json={"category": "analytics"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["category"] == "analytics"
    listed = {c["name"]: c for c in (await client.get("/v1/cookies")).json()["cookies"]}
    assert listed[name]["category"] == "analytics"
    assert_problem(await client.patch(f"/v1/cookies/{cookie_id}", json={"category": None}, headers=ADMIN), 422)

    assert (await client.delete(f"/v1/cookies/{cookie_id}", headers=ADMIN)).status_code == 204
    assert name not in {c["name"] for c in (await client.get("/v1/cookies")).json()["cookies"]}
    assert_problem(await client.delete(f"/v1/cookies/{cookie_id}", headers=ADMIN), 404)

    for action in ("cookie.created", "cookie.updated", "cookie.deleted"):
        events = (await client.get("/v1/audit-events", params={"action": action, "limit": 500},
                                   headers=STAFF_ALL)).json()["items"]
        assert [e["actor"] for e in events if e["target"] == cookie_id] == ["tester"], action


async def test_a_category_maps_only_to_a_consent_purpose(client):
    assert_problem(await client.patch("/v1/cookie-categories/necessary", json={"purpose": "analytics"},
                                      headers=ADMIN), 409)
    assert_problem(await client.patch("/v1/cookie-categories/marketing", json={"purpose": "billing"},
                                      headers=ADMIN), 409)
    renamed = await client.patch("/v1/cookie-categories/preferences",
                                 json={"name": {"sv": "Inställningar", "en": "Your settings"}}, headers=ADMIN)
    assert renamed.status_code == 200 and renamed.json()["purpose"] == "preferences"
    categories = (await client.get("/v1/cookies?lang=en")).json()["categories"]
    assert categories[1]["name"] == "Your settings"
    await client.patch("/v1/cookie-categories/preferences",
                       json={"name": {"sv": "Inställningar", "en": "Preferences"}}, headers=ADMIN)


# --- choices ---------------------------------------------------------------------------------------------------


async def test_a_first_choice_issues_an_id_and_keeps_the_evidence(browser, client, db):
    response = await choose(browser, choices={"analytics": True}, language="en", text_shown="We use cookies.",
                            page_url=f"{SITE}/tjanster")
    assert response.status_code == 201
    body = response.json()
    visitor_id = body["visitor_id"]
    assert len(visitor_id) == 22 and response.headers["location"] == f"/v1/visitor-consents/{visitor_id}"
    assert body["choices"] == {"necessary": True, "preferences": False, "analytics": True, "marketing": False}
    assert body["gpc"] is False and body["method"] == "explicit" and body["language"] == "en"
    current = (await client.get("/v1/policies/current")).json()["version"]
    assert body["notice_version"] == current

    jwks = (await client.get("/v1/consent-receipts/jwks.json")).json()
    claims = jwt.decode(body["receipt"], jwks, algorithms=["ES256"], options={"verify_aud": False})
    assert claims["sub"] == claims["piiPrincipalId"] == visitor_id and claims["language"] == "en"
    assert claims["cookieChoices"] == body["choices"] and claims["policyVersion"] == current
    assert {p["purposeCode"] for p in claims["services"][0]["purposes"]} == {"preferences", "analytics",
                                                                            "marketing"}

    async with db() as session:
        [event] = (await session.execute(
            select(VisitorConsentEvent).where(VisitorConsentEvent.visitor_id == visitor_id))).scalars().all()
    network = ".".join(browser.address.split(".")[:3]) + ".0/24"
    assert event.network == network and event.user_agent == "Test/1"
    assert event.text_shown == "We use cookies." and event.page_url == f"{SITE}/tjanster"
    assert event.receipt == body["receipt"] and event.choices == body["choices"]

    again = await client.get(f"/v1/visitor-consents/{visitor_id}")
    assert again.status_code == 200 and again.json() == body


async def test_a_later_choice_replaces_the_state_and_keeps_every_event(browser, db):
    first = (await choose(browser, choices={"analytics": True, "marketing": True})).json()
    second = await choose(browser, visitor_id=first["visitor_id"], choices={})
    assert second.status_code == 201 and second.json()["visitor_id"] == first["visitor_id"]
    assert second.json()["choices"] == {"necessary": True, "preferences": False, "analytics": False,
                                        "marketing": False}
    state = (await browser.get(f"/v1/visitor-consents/{first['visitor_id']}")).json()
    assert state["choices"]["marketing"] is False
    async with db() as session:
        events = (await session.execute(select(VisitorConsentEvent).where(
            VisitorConsentEvent.visitor_id == first["visitor_id"]))).scalars().all()
    assert len(events) == 2


async def test_ids_the_service_did_not_issue_or_that_expired_are_replaced(browser, db):
    made_up = await choose(browser, visitor_id="my-own-id")
    assert made_up.status_code == 201 and made_up.json()["visitor_id"] != "my-own-id"
    assert_problem(await browser.get("/v1/visitor-consents/my-own-id"), 404)
    visitor_id = made_up.json()["visitor_id"]
    async with db() as session:
        await session.execute(update(Visitor).where(Visitor.id == visitor_id)
                              .values(expires_at=utc_now() - timedelta(seconds=1)))
        await session.commit()
    assert_problem(await browser.get(f"/v1/visitor-consents/{visitor_id}"), 404)  # the banner asks again
    renewed = await choose(browser, visitor_id=visitor_id)
    assert renewed.json()["visitor_id"] not in (visitor_id, "my-own-id")


async def test_global_privacy_control_refuses_what_it_covers(browser):
    response = await choose(browser, gpc=True, choices={"preferences": True, "analytics": True, "marketing": True})
    body = response.json()
    assert response.status_code == 201 and body["gpc"] is True and body["method"] == "gpc"
    assert body["choices"] == {"necessary": True, "preferences": True, "analytics": False, "marketing": False}


async def test_bad_choices_are_refused_clearly(browser):
    for body in ({"choices": {"analytics": "yes"}}, {"choices": {"necessary": False}}, {"choices": {}, "x": 1},
                 {"choices": {}, "language": "de"}, {}):
        assert_problem(await browser.post("/v1/visitor-consents", json=body), 422)
    problem = assert_problem(await choose(browser, notice_version="1999-01"), 422)
    assert problem["errors"][0]["loc"] == ["body", "notice_version"]


async def test_an_ipv6_address_is_kept_to_its_48(app, db):
    transport = httpx.ASGITransport(app=app, client=(f"2001:db8:{random.randint(1, 9999):x}:1::5", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as browser:
        visitor_id = (await choose(browser)).json()["visitor_id"]
    async with db() as session:
        [event] = (await session.execute(select(VisitorConsentEvent).where(
            VisitorConsentEvent.visitor_id == visitor_id))).scalars().all()
    assert event.network.endswith("::/48") and event.network.startswith("2001:db8:")


@pytest.fixture(scope="module")
async def strict_app(database_url):
    application = create_app(app_settings(database_url=database_url, log_level="WARNING",
                                          visitor_consent_rate_limit="3/minute", cors_origins=SITE))
    async with application.router.lifespan_context(application):
        yield application


def browser_on(application, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=(address, 1))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_choices_are_rate_limited_per_address(strict_app):
    async with browser_on(strict_app, "192.0.2.10") as flooder, browser_on(strict_app, "192.0.2.11") as other:
        assert [(await choose(flooder)).status_code for _ in range(3)] == [201, 201, 201]
        refused = await choose(flooder)
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await choose(other)).status_code == 201


# --- CORS ------------------------------------------------------------------------------------------------------


async def test_the_website_may_call_public_and_subject_endpoints_from_a_browser(strict_app, client):
    subject = await make_subject(client)
    async with browser_on(strict_app, "192.0.2.20") as browser:
        preflight = await browser.options("/v1/visitor-consents", headers={
            "Origin": SITE, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, sec-gpc"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == SITE
        assert preflight.headers["access-control-max-age"] == "600"
        assert "Sec-GPC" in preflight.headers["access-control-allow-headers"]
        # A header the service does not take: refused, as every error is, in problem+json.
        refused = await browser.options("/v1/visitor-consents", headers={
            "Origin": SITE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-tracker"})
        assert assert_problem(refused, 400)["detail"].startswith("Disallowed CORS headers")
        assert "x-tracker" not in refused.headers["access-control-allow-headers"].lower()
        declaration = await browser.get("/v1/cookies", headers={"Origin": SITE})
        assert declaration.headers["access-control-allow-origin"] == SITE
        assert "X-Request-ID" in declaration.headers["access-control-expose-headers"]
        own = await browser.get(f"/v1/subjects/{subject['id']}/consents",
                                headers={"Origin": SITE, **as_subject(subject["id"])})
        assert own.status_code == 200 and own.headers["access-control-allow-origin"] == SITE


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


async def test_other_origins_and_staff_endpoints_get_no_cors_headers(strict_app):
    async with browser_on(strict_app, "192.0.2.21") as browser:
        stranger = await browser.get("/v1/cookies", headers={"Origin": "https://evil.example"})
        assert stranger.status_code == 200 and cors_headers(stranger) == []
        assert "Origin" in stranger.headers["vary"]  # a cache must not hand this answer to a listed origin
        refused = await browser.options("/v1/visitor-consents", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert cors_headers(refused) == []
        assert_problem(refused, 405)  # as without CORS: the browser refuses the call
        for path in ("/v1/subjects", "/v1/processors", "/v1/audit-events"):
            response = await browser.get(path, headers={"Origin": SITE, **STAFF_ALL})
            assert cors_headers(response) == [], path
            preflight = await browser.options(path, headers={"Origin": SITE, "Access-Control-Request-Method": "GET"})
            assert cors_headers(preflight) == [], path


async def test_a_shared_cache_keeps_answers_apart_by_origin(strict_app):
    """The declaration is publicly cacheable: asked without an Origin (a server, a prefetch), its answer carries
    no CORS header, and a CDN must not hand it to the banner on a listed origin, which the browser would then
    refuse; nor the listed origin's answer to another."""
    async with browser_on(strict_app, "192.0.2.22") as browser:
        for headers in ({}, {"Origin": SITE}):
            response = await browser.get("/v1/cookies", headers=headers)
            assert response.headers["cache-control"].startswith("public")
            varies = [v.strip() for v in ",".join(response.headers.get_list("vary")).split(",")]
            assert varies.count("Origin") == 1, headers
        personal = await browser.get("/v1/visitor-consents/no-such-visitor")
        assert personal.headers["cache-control"] == "no-store" and "vary" not in personal.headers


def test_cors_origins_must_be_origins():
    assert Settings(cors_origins="https://a.example, https://b.example/").cors_origins == [
        "https://a.example", "https://b.example"]
    for bad in ("*", "https://a.example/path", "a.example", "https://*.example"):
        with pytest.raises(ValueError):
            Settings(cors_origins=bad)
    assert Settings(env="development").allowed_origins == ["http://localhost:8000"]
    assert Settings(env="production", cors_origins="").allowed_origins == []


# --- linked to a subject ---------------------------------------------------------------------------------------


async def link(db, visitor_id: str, subject_id: str) -> None:
    """What a login with the visitor id does (tests/test_subject_login.py drives the login itself)."""
    from app.visitors import service
    async with db() as session:
        await service.link_at_login(session, visitor_id, uuid.UUID(subject_id))
        await session.commit()


async def consents_of(client, subject_id: str) -> dict[str, str]:
    states = (await client.get(f"/v1/subjects/{subject_id}/consents", headers=as_subject(subject_id))).json()
    return {s["purpose"]: s["status"] for s in states["items"]}


async def test_a_linked_device_and_its_subject_share_their_choices(browser, client, db):
    subject = await make_subject(client)
    visitor = (await choose(browser, choices={"analytics": True, "preferences": True})).json()
    await link(db, visitor["visitor_id"], subject["id"])
    consents = await consents_of(client, subject["id"])
    assert consents == {"analytics": "granted", "preferences": "granted", "marketing": "withdrawn"}
    history = (await client.get(f"/v1/subjects/{subject['id']}/consents/history",
                                headers=as_subject(subject["id"]))).json()["items"]
    assert {e["channel"] for e in history} == {"web"}
    assert {e["evidence"]["visitor_id"] for e in history} == {visitor["visitor_id"]}

    # A later choice on the device is the subject's too.
    await choose(browser, visitor_id=visitor["visitor_id"], choices={"analytics": True, "marketing": True})
    assert (await consents_of(client, subject["id"]))["marketing"] == "granted"

    # A withdrawal through the CRM reaches the device the next time the banner asks.
    withdrawn = await client.delete(f"/v1/subjects/{subject['id']}/consents/analytics", headers=STAFF_ALL)
    assert withdrawn.status_code in (200, 201)
    state = (await browser.get(f"/v1/visitor-consents/{visitor['visitor_id']}")).json()
    assert state["choices"]["analytics"] is False and state["method"] == "subject"
    assert state["choices"]["marketing"] is True


async def test_at_login_the_newer_choice_wins(browser, client, db):
    subject = await make_subject(client)
    visitor = (await choose(browser, choices={"analytics": True, "marketing": True})).json()
    # The subject withdrew marketing after the device chose: that is newer, and the device follows.
    await client.post(f"/v1/subjects/{subject['id']}/consents", headers=as_subject(subject["id"]),
                      json={"purpose": "marketing", "status": "withdrawn", "channel": "web"})
    await link(db, visitor["visitor_id"], subject["id"])
    consents = await consents_of(client, subject["id"])
    assert consents["analytics"] == "granted" and consents["marketing"] == "withdrawn"
    state = (await browser.get(f"/v1/visitor-consents/{visitor['visitor_id']}")).json()
    assert state["choices"]["marketing"] is False and state["choices"]["analytics"] is True


async def test_erasure_unlinks_the_devices_and_drops_what_points_at_the_person(browser, client, db):
    subject = await make_subject(client)
    visitor = (await choose(browser)).json()
    await link(db, visitor["visitor_id"], subject["id"])
    await complete_request(client, subject["id"], "erasure")
    async with db() as session:
        row = await session.get(Visitor, visitor["visitor_id"], populate_existing=True)
        events = (await session.execute(select(VisitorConsentEvent).where(
            VisitorConsentEvent.visitor_id == visitor["visitor_id"]))).scalars().all()
    assert row.subject_id is None
    assert all(e.user_agent is None and e.network is None for e in events)


# --- retention -------------------------------------------------------------------------------------------------


async def test_the_sweep_deletes_evidence_past_the_catalog_rule(browser, client, db):
    old, recent = [(await choose(browser)).json()["visitor_id"] for _ in range(2)]
    purpose = (await client.get("/v1/purposes/consent_records")).json()
    assert purpose["legal_basis"] == "legal_obligation" and purpose["retention"]["period"] == "P48M"
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()
    [activity] = [a for a in record["activities"] if a["purpose"] == "consent_records"]
    assert "website_visitors" in activity["subject_categories"] and activity["retention"]["period"] == "P48M"
    async with db() as session:
        long_ago = utc_now() - timedelta(days=49 * 31)
        await session.execute(update(Visitor).where(Visitor.id == old).values(recorded_at=long_ago))
        await session.execute(update(VisitorConsentEvent).where(VisitorConsentEvent.visitor_id == old)
                              .values(recorded_at=long_ago))
        await session.commit()
    run = await sweep(client)
    assert run["report"]["purged"]["visitor_consent_events"] >= 1
    async with db() as session:
        assert await session.get(Visitor, old, populate_existing=True) is None
        assert await session.get(Visitor, recent, populate_existing=True) is not None


def test_a_rate_limit_is_a_number_per_unit_of_time():
    assert Settings(visitor_consent_rate_limit="10/second").visitor_consent_rate_limit == "10/second"
    for bad in ("lots", "0/minute", "10/fortnight", "10 per minute"):
        with pytest.raises(ValueError):
            Settings(visitor_consent_rate_limit=bad)
