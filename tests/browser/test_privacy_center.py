"""The privacy center in a real browser: a person's journeys, driven by the keyboard and the mouse as a person
would, with the login code read from the SMTP server the service mails it to; staff act through the API.
axe-core checks every page in both languages, and each page's screenshot is kept (tests/browser/artifacts/
privacy-center/, copied to docs/privacy-center/ when they change on purpose)."""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Awaitable, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import ARTIFACTS, NewContext, Server
from tests.browser.test_banner import allow, choose, visit
from tests.support import (
    REQUEST_MANAGER,
    add_item,
    as_subject,
    complete_request,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
    unique_email,
)

CARD = "4111 1111 1111 1234"
SHOTS = ARTIFACTS / "privacy-center"


def center(server: Server, path: str = "", lang: str = "sv") -> str:
    return f"{server.site}/privacy-center{path}" + ("?lang=en" if lang == "en" else "")


async def make_person(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    subject = await make_subject(api, name=fields.pop("name", "Anna Svensson"), **fields)
    await add_item(api, subject["id"], category="payment", value=CARD, purpose="billing", source="direct")
    await add_item(api, subject["id"], category="phone", value=f"+4670{random.randint(1000000, 9999999)}",
                   purpose="service", source="direct")
    await add_item(api, subject["id"], category="address", value="Storgatan 1, 111 22 Stockholm",
                   purpose="service", source="direct")
    return subject


async def sign_in(page: Page, server: Server, address: str, lang: str = "sv",
                  at_code: Callable[[], Awaitable[None]] | None = None) -> None:
    """E-mail, then the code from the mail, typed as a person would (`at_code` runs on the code's page)."""
    t = {"sv": ("E-postadress", "Skicka kod", "Kod", "Fortsätt"), "en": ("E-mail address", "Send code", "Code",
                                                                      "Continue")}[lang]
    await page.goto(center(server, "/sign-in", lang))
    before = len(server.inbox.to(address))
    await page.get_by_label(t[0]).fill(address)
    await page.get_by_role("button", name=t[1]).click()
    code = await server.inbox.wait_for_code(address, after=before)
    if at_code is not None:
        await at_code()
    await page.get_by_label(t[2], exact=True).fill(code)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(center(server, "/data", lang))


async def staff_moves(api: httpx.AsyncClient, request_id: str, *actions: str) -> dict[str, Any]:
    for action in actions:
        moved = await api.post(f"/v1/rights-requests/{request_id}/actions", json={"action": action},
                               headers=REQUEST_MANAGER)
        assert moved.status_code == 200, moved.text
    return moved.json()


# --- 1. sign in, my data, sign out, and the back button ---------------------------------------------------------


async def test_sign_in_see_my_data_masked_sign_out_and_the_back_button_shows_nothing(page, server, api):
    person = await make_person(api)
    await sign_in(page, server, person["email"])
    main = page.locator("main")
    await expect(main).to_contain_text("Anna Svensson")
    await expect(main).to_contain_text("****1234")
    await expect(main).to_contain_text("Storgatan 1")
    assert CARD not in await page.content()
    await expect(page.get_by_role("heading", name="Betalningsuppgifter")).to_be_visible()

    await page.get_by_role("button", name="Logga ut").click()
    await expect(page.get_by_role("status")).to_contain_text("Du är utloggad")
    await page.go_back()
    await expect(page).to_have_url(center(server, "/sign-in") + "?expired=1")
    content = await page.content()
    assert "Anna Svensson" not in content and "Storgatan" not in content and "1234" not in content


# --- 2. withdraw the newsletter consent -------------------------------------------------------------------------


async def test_withdrawing_the_newsletter_consent_is_recorded_with_channel_web(page, server, api):
    person = await make_person(api)
    granted = await api.post(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]),
                             json={"purpose": "newsletter", "status": "granted", "channel": "email"})
    assert granted.status_code == 201
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Mina samtycken").click()
    switch = page.get_by_role("switch", name="Nyhetsbrev")
    await expect(switch).to_have_attribute("aria-checked", "true")
    await switch.click()
    await expect(page.get_by_role("status")).to_contain_text("Kvitto-id")
    await expect(page.get_by_role("switch", name="Nyhetsbrev")).to_have_attribute("aria-checked", "false")
    receipt = (await page.get_by_role("status").locator("code").text_content()).strip()

    history = (await api.get(f"/v1/subjects/{person['id']}/consents/history",
                             headers=as_subject(person["id"]))).json()["items"]
    assert history[0]["id"] == receipt
    assert (history[0]["purpose"], history[0]["status"], history[0]["channel"]) == ("newsletter", "withdrawn", "web")
    assert history[0]["evidence"]["ip"] == "127.0.0.1"
    assert "Chrome" in history[0]["evidence"]["user_agent"]
    assert history[0]["receipt"]


# --- 3. opt out of SMS ------------------------------------------------------------------------------------------


async def test_opting_out_of_sms_is_what_the_marketing_check_answers(page, server, api):
    person = await make_person(api)
    phone = next(i["value"] for i in (await api.get(f"/v1/subjects/{person['id']}/data",
                                                     headers=as_subject(person["id"]))).json()["items"]
                 if i["category"] == "phone")
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Marknadsföring").click()
    row = page.locator("li", has=page.get_by_role("heading", name="SMS"))
    await row.get_by_role("button", name="Avregistrera").click()
    await expect(page.get_by_role("status")).to_contain_text("Ändringen är sparad")
    await expect(row).to_contain_text("Avregistrerad")
    check = await api.post("/v1/marketing/check", headers=staff("consents:read"),
                           json={"contacts": [{"phone": phone, "channel": "sms"}]})
    assert check.json()["results"][0] == {"allowed": False, "reason": "opted_out"} | {
        k: v for k, v in check.json()["results"][0].items() if k not in ("allowed", "reason")}


# --- 4. an access request, downloaded in three formats ----------------------------------------------------------


async def test_an_access_request_is_downloaded_in_json_csv_and_html(page, server, api):
    person = await make_person(api)
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Mina begäranden").click()
    await page.get_by_label("Registerutdrag: se allt vi har om mig").check()
    await page.get_by_label("Beskrivning").fill("Jag vill se allt.")
    await page.get_by_role("button", name="Skicka begäran").click()
    await expect(page.get_by_role("status")).to_contain_text("Vi har tagit emot din begäran")
    request_id = page.url.split("/requests/")[1].split("?")[0]
    await staff_moves(api, request_id, "verify", "start", "complete")

    await page.reload()
    await expect(page.get_by_role("heading", name="Ladda ned dina uppgifter")).to_be_visible()
    async with page.expect_download() as json_download:
        await page.get_by_role("link", name="JSON").click()
    body = json.loads(Path(await (await json_download.value).path()).read_text())
    assert body["subject"]["id"] == person["id"]
    assert any(i["value"] == "****1234" for i in body["personal_data"])
    async with page.expect_download() as csv_download:
        await page.get_by_role("link", name="CSV (zip)").click()
    archive = zipfile.ZipFile(BytesIO(Path(await (await csv_download.value).path()).read_bytes()))
    assert any(name.endswith(".csv") for name in archive.namelist())
    await page.get_by_role("link", name="Webbsida (HTML)").click()
    await expect(page.locator("body")).to_contain_text("Anna Svensson")


# --- 5. erasure: afterwards, only what the law keeps ------------------------------------------------------------


async def test_after_erasure_signing_in_shows_only_what_the_law_keeps(page, server, api):
    person = await make_person(api)
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Mina begäranden").click()
    await page.get_by_label("Radering: glöm mig").check()
    await page.get_by_role("button", name="Skicka begäran").click()
    request_id = page.url.split("/requests/")[1].split("?")[0]
    await staff_moves(api, request_id, "verify", "start", "complete")

    await page.get_by_role("button", name="Logga ut").click()
    await sign_in(page, server, person["email"])
    main = page.locator("main")
    await expect(main).to_contain_text("Dina personuppgifter är raderade")
    await expect(main).to_contain_text("****1234")
    await expect(main).to_contain_text("Sparas till")
    await expect(main).to_contain_text("bokföringslagen 7 kap. 2 §")  # why the law keeps it
    await expect(main).not_to_contain_text("Storgatan")
    await expect(main).not_to_contain_text("Anna Svensson")
    await screenshot(page, "erased-data", "sv")


# --- 6. a person who is not registered --------------------------------------------------------------------------


async def test_a_person_who_is_not_registered_files_a_request_and_staff_answer_no_data(page, server, api):
    address = unique_email("stranger")
    await page.goto(center(server))
    await page.get_by_role("link", name="Skicka en begäran utan konto").first.click()
    await page.get_by_label("E-postadress").fill(address)
    await page.get_by_role("button", name="Skicka kod").click()
    await page.get_by_label("Kod", exact=True).fill(await server.inbox.wait_for_code(address))
    await page.get_by_role("button", name="Fortsätt").click()
    await page.get_by_label("Registerutdrag: se allt vi har om mig").check()
    await page.get_by_role("button", name="Skicka begäran").click()
    await expect(page.get_by_role("status")).to_contain_text(address)

    listed = await api.get("/v1/rights-requests", params={"unmatched": "true", "limit": 500},
                           headers=staff("requests:read"))
    mine = [r for r in listed.json()["items"] if r["requester_email"] == address]
    assert len(mine) == 1 and mine[0]["subject_id"] is None
    done = await staff_moves(api, mine[0]["id"], "verify", "start", "complete")
    assert done["status"] == "completed"
    answer = await server.inbox.wait_for_mail(address, after=2)  # the code, the receipt, and now the answer
    assert "no personal data" in answer.lower()


# --- 7. English throughout ---------------------------------------------------------------------------------------


async def test_english_throughout(page, server, api):
    person = await make_person(api)
    await page.goto(center(server))
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.get_by_role("link", name="Sign in").first.click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await sign_in(page, server, person["email"], lang="en")
    for link, heading in (("My data", "My data"), ("My consents", "My consents"), ("Marketing", "Marketing"),
                          ("My requests", "My requests"), ("Recipients", "Who received my data")):
        await page.get_by_role("link", name=link, exact=True).click()
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_contain_text("You are signed out")


# --- 8. CSRF ------------------------------------------------------------------------------------------------------


async def test_a_form_posted_without_its_token_is_refused_and_changes_nothing(page, server, api):
    person = await make_person(api)
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Marknadsföring").click()
    await page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    row = page.locator("li", has=page.get_by_role("heading", name="E-post"))
    await row.get_by_role("button", name="Avregistrera").click()
    await expect(page.get_by_role("alert")).to_contain_text("Ingenting har ändrats")
    channels = (await api.get(f"/v1/subjects/{person['id']}/marketing", headers=as_subject(person["id"]))).json()
    assert channels["channels"]["email"] == "allowed"


# --- 9. restricted and erased subjects ----------------------------------------------------------------------------


async def test_a_restricted_subject_is_told_on_every_page(page, server, api):
    person = await make_person(api)
    await complete_request(api, person["id"], "restriction")
    await sign_in(page, server, person["email"])
    for link in ("Mina uppgifter", "Mina samtycken", "Marknadsföring", "Mina begäranden", "Mottagare"):
        await page.get_by_role("link", name=link, exact=True).click()
        await expect(page.locator("main")).to_contain_text("Behandlingen av dina personuppgifter är begränsad")


async def test_an_erased_subject_is_offered_nothing_it_cannot_do(page, server, api):
    person = await make_person(api)
    await complete_request(api, person["id"], "erasure")
    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Mina samtycken").click()
    await expect(page.locator("main")).to_contain_text("Alla samtycken återkallades")
    assert await page.get_by_role("switch").count() == 0
    await page.get_by_role("link", name="Marknadsföring").click()
    await expect(page.locator("main")).to_contain_text("Dina avregistreringar gäller för alltid")
    assert await page.locator("main").get_by_role("button").count() == 0
    await page.get_by_role("link", name="Mina begäranden").click()
    await expect(page.locator("main")).to_contain_text("nya begäranden kan inte kopplas till dig")
    assert await page.get_by_role("button", name="Skicka begäran").count() == 0


# --- this device's cookie settings ---------------------------------------------------------------------------------


async def test_the_banners_choices_on_this_device_show_and_change_in_the_center(page, server, api):
    person = await make_person(api)
    await visit(page, server.demo())
    await page.get_by_role("button", name="Inställningar", exact=True).click()
    await allow(page, "analytics")
    await choose(page, "Spara mina val")

    await sign_in(page, server, person["email"])
    await page.get_by_role("link", name="Mina samtycken").click()
    analytics = page.get_by_role("checkbox", name="Statistik")
    await expect(analytics).to_be_checked()
    # The device was linked at sign-in: its choice is now the subject's consent.
    state = (await api.get(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]))).json()
    assert {s["purpose"]: s["status"] for s in state["items"]}.get("analytics") == "granted"
    await analytics.uncheck()
    await page.locator("form", has=analytics).get_by_role("button", name="Spara").click()
    await expect(page.get_by_role("status")).to_contain_text("Cookie-inställningarna för den här enheten är sparade")
    await expect(page.get_by_role("checkbox", name="Statistik")).not_to_be_checked()
    state = (await api.get(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]))).json()
    assert {s["purpose"]: s["status"] for s in state["items"]}.get("analytics") == "withdrawn"


# --- 10. axe-core on every page, in both languages, and the screenshots ------------------------------------------


async def screenshot(page: Page, name: str, lang: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}-{lang}.png"), full_page=True)


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("lang", ["sv", "en"])
async def test_every_page_passes_axe_and_is_photographed(new_context: NewContext, server: Server, api, lang: str):
    person = await make_person(api)
    granted = await api.post(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]),
                             json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    assert granted.status_code == 201
    processor = await make_processor(api, name="Faraway Analytics Inc", country="US")
    await report_disclosure(api, processor["id"], person["id"], ["name", "email"], "service")
    access = await complete_request(api, person["id"], "access")
    context = await new_context(viewport={"width": 1100, "height": 800})
    page = await context.new_page()
    found: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        found[name] = [f"{v['id']} ({v['impact']}): {v['help']}" for v in await axe_violations(page)]
        # The page's content does not touch the header above it nor the footer below it.
        room = await page.evaluate("['paddingTop', 'paddingBottom'].map(side => "
                                   "parseFloat(getComputedStyle(document.querySelector('main'))[side]))")
        assert min(room) >= 16, (name, room)
        await screenshot(page, name, lang)

    await page.goto(center(server, "", lang))
    await check("start")
    await page.goto(center(server, "/notice/2026-11-28", lang))
    await check("notice")
    await page.goto(center(server, "/no-account", lang))
    await check("no-account")
    await page.goto(center(server, "/notice/no-such-version", lang))
    await check("error")
    await page.goto(center(server, "/sign-in", lang))
    await check("sign-in")
    await sign_in(page, server, person["email"], lang, at_code=lambda: check("sign-in-code"))
    for name in ("data", "consents", "marketing", "requests", "recipients"):
        await page.goto(center(server, f"/{name}", lang))
        await check(name)
        if name == "data":
            # A value with no space in it (a phone number) keeps to one line: its column widens instead.
            lines = await page.evaluate("[...document.querySelectorAll('td.value')]"
                                        ".filter(td => td.textContent.trim().startsWith('+46')).map(td => { "
                                        "const r = document.createRange(); r.selectNodeContents(td.firstChild); "
                                        "return new Set([...r.getClientRects()].map(b => b.top)).size; })")
            assert lines == [1], lines
    await page.goto(center(server, f"/requests/{access['id']}", lang))
    await check("request")
    assert found == {name: [] for name in found}, found


async def test_the_keyboard_alone_reaches_and_works_every_control(page, server, api):
    person = await make_person(api)
    await page.goto(center(server))
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert "Hoppa till innehållet" in focused  # the skip link comes first, and shows when focused
    await expect(page.locator(".skip")).to_be_in_viewport()
    await sign_in(page, server, person["email"])
    await page.goto(center(server, "/marketing"))
    # Tab to the SMS row's button and press it, without the mouse.
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.form && document.activeElement.form.channel "
                               "&& document.activeElement.form.channel.value === 'sms'"):
            break
    else:
        pytest.fail("the SMS button cannot be reached with Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Ändringen är sparad")
