"""The cookie banner on the demo site, as a visitor uses it: issue 13's journeys in a real Chromium.

The site is on http://localhost:<port>, the service on http://127.0.0.1:<port> (see conftest.py)."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from datetime import timedelta
from typing import Any

import httpx
from jose import jws, jwt
from playwright.async_api import Page, Response, expect
from sqlalchemy import select, update

from app.core.db import create_engine
from app.core.time import utc_now
from app.visitors.models import Visitor, VisitorConsentEvent
from tests.browser.conftest import ARTIFACTS, NewContext, Server
from tests.support import ADMIN, app_settings, make_subject, migrated_database_url, unique_email

OPTIONAL = ("preferences", "analytics", "marketing")
GPC_INIT = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


def banner(page: Page) -> Any:
    return page.locator("#cc-main .cm")


def settings_modal(page: Page) -> Any:
    return page.locator("#cc-main .pm")


async def allow(page: Page, category: str) -> None:
    """Turn a category on in the open settings (the library's switch is a styled checkbox)."""
    await expect(settings_modal(page)).to_be_visible()
    switch = settings_modal(page).locator(f"input[value={category}]")
    await switch.check(force=True)
    await expect(switch).to_be_checked()


async def visit(page: Page, url: str) -> None:
    """Open a page and wait until the banner has made up its mind (shown, or not needed)."""
    await page.goto(url)
    await expect(page.locator("html[data-wesafe-consent]")).to_have_attribute("data-wesafe-consent", "ready")


def is_choice(response: Response) -> bool:
    return response.url.endswith("/v1/visitor-consents") and response.request.method == "POST"


async def choose(page: Page, button: str) -> dict[str, Any]:
    """Click a button of the settings, when open, else of the banner; the service's answer to the choice."""
    scope = settings_modal(page) if await settings_modal(page).is_visible() else banner(page)
    async with page.expect_response(is_choice) as answer:
        await scope.get_by_role("button", name=button, exact=True).click()
    response = await answer.value
    assert response.status == 201, await response.text()
    return await response.json()


def device_cookie(cookies: list[dict[str, Any]]) -> dict[str, Any]:
    [cookie] = [c for c in cookies if c["name"] == "wesafe_consent"]
    return json.loads(urllib.parse.unquote(cookie["value"]))


async def ran(page: Page, category: str) -> bool:
    return bool(await page.evaluate(f"window.{category}Ran === true"))


async def verify_receipt(api: httpx.AsyncClient, record: dict[str, Any]) -> dict[str, Any]:
    jwks = (await api.get("/v1/consent-receipts/jwks.json")).json()
    kid = jwt.get_unverified_header(record["receipt"])["kid"]
    [key] = [k for k in jwks["keys"] if k["kid"] == kid]
    claims = json.loads(jws.verify(record["receipt"], key, algorithms=["ES256"]))
    assert claims["sub"] == record["visitor_id"]
    return claims


async def test_first_visit_then_refusing_all(page: Page, server: Server, api: httpx.AsyncClient):
    await visit(page, server.demo())
    await expect(banner(page)).to_be_visible()
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs inte")
    assert not await ran(page, "analytics")
    assert [c["name"] for c in await page.context.cookies()] == []  # nothing set before a choice
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "banner-sv.png"), animations="disabled")

    # Refusing weighs as much as accepting: same size, colours and type.
    accept = page.get_by_role("button", name="Godkänn alla", exact=True)
    refuse = page.get_by_role("button", name="Neka alla", exact=True)
    style = "e => { const s = getComputedStyle(e); return [s.backgroundColor, s.color, s.fontSize, s.fontWeight,"\
            " s.borderColor, e.offsetHeight]; }"
    assert await accept.evaluate(style) == await refuse.evaluate(style)
    await expect(page.get_by_role("button", name="Inställningar", exact=True)).to_be_visible()

    record = await choose(page, "Neka alla")
    assert record["choices"] == {"necessary": True, "preferences": False, "analytics": False, "marketing": False}
    assert record["method"] == "explicit" and record["gpc"] is False and len(record["visitor_id"]) == 22
    await expect(banner(page)).to_be_hidden()
    assert not await ran(page, "analytics")

    # The service holds the refusal, with its evidence.
    held = await api.get(f"/v1/visitor-consents/{record['visitor_id']}")
    assert held.status_code == 200 and held.json()["choices"] == record["choices"]
    engine = create_engine(app_settings(database_url=migrated_database_url()))
    try:
        async with engine.connect() as connection:
            [event] = (await connection.execute(
                select(VisitorConsentEvent).where(VisitorConsentEvent.visitor_id == record["visitor_id"]))).all()
    finally:
        await engine.dispose()
    assert event.choices == {"necessary": True, "preferences": False, "analytics": False, "marketing": False}
    assert "Vi använder cookies" in event.text_shown and "Neka alla" in event.text_shown
    assert event.page_url == f"{server.site}/demo/site" and event.language == "sv"
    assert event.network and "Chrome" in event.user_agent

    # The device keeps only the choice, the visitor id, the notice version and the expiry.
    stored = device_cookie(await page.context.cookies())
    assert stored["categories"] == ["necessary"]
    assert stored["data"] == {"v": record["visitor_id"], "n": record["notice_version"], "e": stored["data"]["e"]}

    await visit(page, server.demo())
    await expect(banner(page)).to_be_hidden()
    assert not await ran(page, "analytics")
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs inte")


async def test_accepting_all_runs_the_gated_script_and_the_receipt_verifies(
    page: Page, server: Server, api: httpx.AsyncClient
):
    await visit(page, server.demo())
    record = await choose(page, "Godkänn alla")
    assert record["choices"] == {"necessary": True, "preferences": True, "analytics": True, "marketing": True}
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs")
    assert await ran(page, "analytics") and await ran(page, "marketing")

    claims = await verify_receipt(api, record)
    assert claims["cookieChoices"] == record["choices"]
    held = (await api.get(f"/v1/visitor-consents/{record['visitor_id']}")).json()
    assert held["choices"] == record["choices"] and held["receipt"] == record["receipt"]
    assert await page.evaluate("WeSafeConsent.get().receipt") == record["receipt"]

    await visit(page, server.demo())  # the next page: scripts run at once, no banner
    await expect(banner(page)).to_be_hidden()
    assert await ran(page, "analytics")


async def test_analytics_alone_through_the_settings(page: Page, server: Server, api: httpx.AsyncClient):
    await visit(page, server.demo())
    await page.get_by_role("button", name="Inställningar", exact=True).click()
    modal = settings_modal(page)
    await expect(modal).to_be_visible()
    # Each category with its cookie table, from GET /v1/cookies.
    cookies = (await api.get("/v1/cookies", params={"lang": "sv"})).json()
    for category in cookies["categories"]:
        await expect(modal.get_by_text(category["name"], exact=True).first).to_be_visible()
    analytics_cookie = next(c for c in cookies["cookies"] if c["category"] == "analytics")
    await modal.get_by_role("button", name=next(
        c["name"] for c in cookies["categories"] if c["code"] == "analytics")).first.click()
    await expect(modal.get_by_text(analytics_cookie["name"], exact=True)).to_be_visible()
    await expect(modal.locator("input[value=necessary]")).to_be_disabled()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "banner-sv-settings.png"), animations="disabled")

    await allow(page, "analytics")
    record = await choose(page, "Spara mina val")
    assert record["choices"] == {"necessary": True, "preferences": False, "analytics": True, "marketing": False}
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs")
    assert not await ran(page, "marketing")
    await verify_receipt(api, record)


async def test_gpc_refuses_analytics_and_marketing_and_says_so(
    new_context: NewContext, server: Server, api: httpx.AsyncClient
):
    context = await new_context(extra_http_headers={"Sec-GPC": "1"})
    await context.add_init_script(GPC_INIT)
    page = await context.new_page()
    await visit(page, server.demo())
    await expect(banner(page)).to_be_visible()
    await expect(banner(page)).to_contain_text("Global Privacy Control (GPC)")
    await expect(banner(page)).to_contain_text("analys och marknadsföring är avstängda")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "banner-sv-gpc.png"), animations="disabled")

    record = await choose(page, "Godkänn alla")
    assert record["gpc"] is True and record["method"] == "gpc"
    assert record["choices"] == {"necessary": True, "preferences": True, "analytics": False, "marketing": False}
    assert not await ran(page, "analytics") and not await ran(page, "marketing")
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs inte")

    # The settings say why the two categories cannot be turned on.
    await page.evaluate("WeSafeConsent.show(true)")
    modal = settings_modal(page)
    await expect(modal).to_be_visible()
    await expect(modal.locator("input[value=analytics]")).to_have_count(0)
    await expect(modal.get_by_text("Din webbläsare skickar Global Privacy Control").first).to_be_attached()


async def test_the_site_on_another_origin_works_and_an_unlisted_one_does_not(
    page: Page, server: Server, api: httpx.AsyncClient
):
    async with page.expect_response(lambda r: "/v1/cookies" in r.url) as answer:
        await visit(page, server.demo())
    declaration = await answer.value
    assert await page.evaluate("location.origin") == server.site
    assert declaration.url.startswith(server.api)
    assert (await declaration.all_headers())["access-control-allow-origin"] == server.site
    await expect(banner(page)).to_be_visible()

    # The same page served from an origin that is not listed: the browser refuses the service's answers.
    other = await page.context.new_page()
    failures: list[str] = []
    other.on("requestfailed", lambda request: failures.append(request.url))
    await other.goto(f"{server.api}/demo/site?api={server.site}")
    await expect(other.locator("html")).to_have_attribute("data-wesafe-consent", "error")
    await expect(banner(other)).to_have_count(0)
    assert any("/v1/cookies" in url for url in failures)
    assert not await ran(other, "analytics")
    preflight = await api.options("/v1/visitor-consents", headers={
        "Origin": server.api, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers


async def test_changing_ones_mind_is_recorded_and_announced(page: Page, server: Server, api: httpx.AsyncClient):
    await visit(page, server.demo())
    first = await choose(page, "Neka alla")
    # (A function: Playwright would call the unsubscriber that onChange returns if it were the expression's value.)
    await page.evaluate("() => { window.changes = []; WeSafeConsent.onChange(state => window.changes.push(state)); }")

    await page.get_by_role("button", name="Cookie-inställningar").first.click()  # calls WeSafeConsent.show()
    await expect(banner(page)).to_be_visible()
    second = await choose(page, "Godkänn alla")
    assert second["visitor_id"] == first["visitor_id"]
    await page.wait_for_function("window.changes.length === 1")
    announced = await page.evaluate("window.changes[0]")
    assert announced["visitor_id"] == first["visitor_id"] and announced["choices"]["analytics"] is True
    assert announced["receipt"] == second["receipt"]
    await expect(page.locator("#analytics-flag")).to_have_text("Analys körs")  # at once, without a reload
    held = (await api.get(f"/v1/visitor-consents/{first['visitor_id']}")).json()
    assert held["choices"]["analytics"] is True and held["recorded_at"] > first["recorded_at"]

    await page.evaluate("WeSafeConsent.show(true)")
    await expect(settings_modal(page)).to_be_visible()
    third = await choose(page, "Neka alla")
    assert third["choices"]["analytics"] is False
    await page.wait_for_function("window.changes.length === 2")
    assert (await api.get(f"/v1/visitor-consents/{first['visitor_id']}")).json()["choices"]["analytics"] is False


async def test_a_new_notice_version_asks_again(new_context: NewContext, server: Server, api: httpx.AsyncClient):
    context = await new_context()
    page = await context.new_page()
    await visit(page, server.demo())
    first = await choose(page, "Godkänn alla")

    version = f"b-{uuid.uuid4().hex[:8]}"
    published = await api.post("/v1/policies", headers=ADMIN, json={"version": version, "sections": [
        {"id": "cookies", "title": {"sv": "Cookies", "en": "Cookies"},
         "body": {"sv": f"Version {version}", "en": f"Version {version}"}}]})
    assert published.status_code == 201, published.text
    assert (await api.get("/v1/cookies", params={"lang": "sv"})).json()["notice_version"] == version

    # The same device on a later visit (a new profile with its cookies: the old one has /v1/cookies cached).
    later = await new_context(storage_state=await context.storage_state())
    page = await later.new_page()
    await visit(page, server.demo())
    await expect(banner(page)).to_be_visible()
    await expect(banner(page)).to_contain_text("Vi har uppdaterat vår information om cookies")
    assert not await ran(page, "analytics")  # the old choice no longer counts
    again = await choose(page, "Godkänn alla")
    assert again["visitor_id"] == first["visitor_id"] and again["notice_version"] == version
    assert device_cookie(await later.cookies())["data"]["n"] == version


async def test_an_expired_choice_asks_again(new_context: NewContext, server: Server):
    """Twelve months on, the choice has expired on the device and at the service: the banner asks again, no
    gated script runs meanwhile, and the next choice is a new visitor's."""
    context = await new_context()
    page = await context.new_page()
    await visit(page, server.demo())
    first = await choose(page, "Godkänn alla")
    assert await ran(page, "analytics")

    # A year later, moved back rather than waited for: the service's record and the device's cookie.
    engine = create_engine(app_settings(database_url=migrated_database_url()))
    try:
        async with engine.begin() as connection:
            await connection.execute(update(Visitor).where(Visitor.id == first["visitor_id"])
                                     .values(expires_at=utc_now() - timedelta(seconds=1)))
    finally:
        await engine.dispose()
    [cookie] = [c for c in await context.cookies() if c["name"] == "wesafe_consent"]
    stored = device_cookie([cookie])
    stored["data"]["e"] = int(time.time() * 1000) - 1000
    value = urllib.parse.quote(json.dumps(stored, separators=(",", ":")), safe="")
    await context.add_cookies([{key: cookie[key] for key in ("name", "domain", "path", "expires", "sameSite")}
                               | {"value": value}])

    page = await context.new_page()
    await visit(page, server.demo())
    await expect(banner(page)).to_be_visible()
    assert not await ran(page, "analytics")
    again = await choose(page, "Neka alla")
    assert again["visitor_id"] != first["visitor_id"]
    assert device_cookie(await context.cookies())["data"]["v"] == again["visitor_id"]


async def test_logging_in_turns_the_device_choices_into_the_subjects_consents(
    page: Page, server: Server, api: httpx.AsyncClient
):
    await visit(page, server.demo())
    await page.get_by_role("button", name="Inställningar", exact=True).click()
    await allow(page, "analytics")
    await allow(page, "preferences")
    device = await choose(page, "Spara mina val")

    address = unique_email("visitor")
    subject = await make_subject(api, email=address)
    assert (await api.post("/v1/auth/subject-login", json={"email": address})).status_code == 202
    code = await server.inbox.wait_for_code(address)
    verified = await api.post("/v1/auth/subject-login/verify", json={
        "email": address, "code": code, "visitor_id": device["visitor_id"]})
    assert verified.status_code == 200, verified.text
    token = {"Authorization": f"Bearer {verified.json()['access_token']}"}

    consents = (await api.get(f"/v1/subjects/{subject['id']}/consents", headers=token)).json()["items"]
    granted = {c["purpose"]: c["status"] == "granted" for c in consents}
    assert {purpose: granted.get(purpose, False) for purpose in OPTIONAL} == {
        purpose: device["choices"][purpose] for purpose in OPTIONAL}

    # A withdrawal on the subject's side reaches the device the next time the banner asks.
    withdrawn = await api.delete(f"/v1/subjects/{subject['id']}/consents/analytics", headers=token)
    assert withdrawn.status_code == 200, withdrawn.text
    await visit(page, server.demo())
    await expect(banner(page)).to_be_hidden()
    assert not await ran(page, "analytics")
    assert (await page.evaluate("WeSafeConsent.get().choices")) == {
        "necessary": True, "preferences": True, "analytics": False, "marketing": False}


async def test_the_english_banner(page: Page, server: Server, api: httpx.AsyncClient):
    await visit(page, server.demo("en"))
    await expect(banner(page)).to_be_visible()
    await expect(banner(page)).to_contain_text("We use cookies")
    for button in ("Accept all", "Reject all", "Settings"):
        await expect(page.get_by_role("button", name=button, exact=True)).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "banner-en.png"), animations="disabled")

    await page.get_by_role("button", name="Settings", exact=True).click()
    english = (await api.get("/v1/cookies", params={"lang": "en"})).json()
    necessary = next(c for c in english["categories"] if c["code"] == "necessary")
    await expect(settings_modal(page).get_by_text(necessary["name"], exact=True).first).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "banner-en-settings.png"), animations="disabled")
    record = await choose(page, "Reject all")
    assert record["language"] == "en"
