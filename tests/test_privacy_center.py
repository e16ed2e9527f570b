"""The privacy center through the real app: signing in by a code read from a real SMTP server, every page, the
forms and what they change (checked through the API), CSRF, the session's end, headers and escaping."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from fastapi import Response
from fastapi.routing import APIRoute
from sqlalchemy import select, update

from app.core.time import utc_now
from app.main import create_app
from app.privacy_center.deps import Center
from app.privacy_center.models import CenterSession
from app.privacy_center.router import router as center_router
from app.privacy_center.service import Person
from tests.support import (
    REQUEST_MANAGER,
    Inbox,
    add_item,
    app_settings,
    as_subject,
    complete_request,
    make_processor,
    make_subject,
    report_disclosure,
    smtp_inbox,
    staff,
    unique_email,
)
from tests.test_retention import sweep

CENTER = "/privacy-center"
CARD = "4111 1111 1111 1234"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as mailbox:
        yield mailbox


@pytest.fixture(scope="module")
async def center_app(database_url, inbox):
    application = create_app(app_settings(database_url=database_url, log_level="WARNING", mail_backend="smtp",
                                          smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_starttls=False))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def api(center_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=center_app), base_url="http://t") as http:
        yield http


def _browser(app) -> httpx.AsyncClient:
    """A browser of its own (cookies, and a client address no other test uses: the login limits are per IP and
    count in the shared database, so this range, 198.18.0.0/15, is this module's alone)."""
    address = f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers={"User-Agent": "TestBrowser/1.0"})


@pytest.fixture
async def browser(center_app) -> AsyncIterator[httpx.AsyncClient]:
    async with _browser(center_app) as http:
        yield http


def form_token(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def sign_in(browser: httpx.AsyncClient, inbox: Inbox, address: str) -> httpx.Response:
    page = await browser.get(f"{CENTER}/sign-in")
    before = len(inbox.to(address))
    asked = await browser.post(f"{CENTER}/sign-in", data={"email": address, "csrf_token": form_token(page)})
    assert asked.status_code == 200 and 'name="code"' in asked.text
    code = await inbox.wait_for_code(address, after=before)
    done = await browser.post(f"{CENTER}/sign-in/code",
                              data={"email": address, "code": code, "csrf_token": form_token(asked)})
    assert done.status_code == 303 and done.headers["location"] == f"{CENTER}/data", done.text
    return done


async def post_form(browser: httpx.AsyncClient, page_path: str, action: str, **fields: str) -> httpx.Response:
    """Submit a form on a page the way the browser would: with the page's token."""
    page = await browser.get(f"{CENTER}{page_path}")
    assert page.status_code == 200, page.text
    return await browser.post(f"{CENTER}{action}", data={**fields, "csrf_token": form_token(page)})


@pytest.fixture
async def person(api) -> dict:
    subject = await make_subject(api, name="Anna Svensson")
    await add_item(api, subject["id"], category="payment", value=CARD, purpose="billing", source="direct")
    await add_item(api, subject["id"], category="phone", value=f"+4670{random.randint(1000000, 9999999)}",
                   purpose="service", source="direct")
    return subject


# --- public pages -----------------------------------------------------------------------------------------------


async def test_the_start_page_tells_who_is_responsible_and_how_to_complain(browser):
    page = await browser.get(CENTER)
    assert page.status_code == 200
    assert '<html lang="sv">' in page.text
    for expected in ("WeSafe IT", "dataskydd@wesafe.se", "Integritetsskyddsmyndigheten", "https://www.imy.se",
                     f'href="{CENTER}/notice/2026-11-29"', f'href="{CENTER}/sign-in"', f'href="{CENTER}/no-account"'):
        assert expected in page.text
    english = await browser.get(f"{CENTER}?lang=en")
    assert '<html lang="en">' in english.text and "Why we process personal data" in english.text
    assert f'href="{CENTER}/sign-in?lang=en"' in english.text
    notice = await browser.get(f"{CENTER}/notice/2026-11-28?lang=en")
    assert notice.status_code == 200 and "Cookies" in notice.text
    missing = await browser.get(f"{CENTER}/notice/1999-01")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


async def test_every_page_carries_the_security_headers(browser):
    for path in ("", "/sign-in", "/no-account", "/data", "/notice/nope"):
        response = await browser.get(f"{CENTER}{path}")
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy  # no script at all
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
    cookie = (await browser.get(CENTER)).headers.get("set-cookie") or ""
    jar = browser.cookies.jar
    assert any(c.name == "wesafe_center" for c in jar)
    fresh = await _browser(browser._transport.app).get(CENTER)  # type: ignore[attr-defined]
    cookie = fresh.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/privacy-center" in cookie


async def test_every_page_names_the_configured_controller(database_url):
    settings = app_settings(database_url=database_url, log_level="WARNING", controller_name="Exempel AB",
                            controller_email="integritet@exempel.se")
    application = create_app(settings)
    async with application.router.lifespan_context(application), _browser(application) as http:
        for path in ("", "/sign-in", "/no-account", "/notice/nope"):
            footer = (await http.get(f"{CENTER}{path}")).text.split("<footer", 1)[1]
            assert "Exempel AB" in footer and 'href="mailto:integritet@exempel.se"' in footer, path
            assert "wesafe.se" not in footer, path


def test_the_session_cookie_is_secure_in_production():
    def cookie(env: str) -> str:
        runtime = SimpleNamespace(settings=SimpleNamespace(env=env))
        center = Center(request=None, session=None, runtime=runtime, person=Person(token="new"), cookie=None)
        return center._finish(Response()).headers["set-cookie"].lower()

    assert "; secure" in cookie("production") and "samesite=strict" in cookie("production")
    assert "secure" not in cookie("development")


async def test_signed_in_pages_send_a_stranger_to_sign_in(browser):
    for path in ("/data", "/consents", "/marketing", "/requests", "/recipients", f"/requests/{uuid.uuid4()}"):
        response = await browser.get(f"{CENTER}{path}?lang=en")
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"{CENTER}/sign-in?expired=1&lang=en")


# --- signing in, my data, signing out ---------------------------------------------------------------------------


async def test_sign_in_shows_my_data_masked_and_audited_and_sign_out_ends_the_session(browser, inbox, api, person):
    cookie_before = browser.cookies.get("wesafe_center")
    await sign_in(browser, inbox, person["email"].upper())
    token = browser.cookies.get("wesafe_center")
    assert token and token != cookie_before  # a new token at sign-in: one seen before is worth nothing
    page = await browser.get(f"{CENTER}/data")
    assert page.status_code == 200
    assert "Anna Svensson" in page.text and person["email"] in page.text
    assert "****1234" in page.text and CARD not in page.text and "4111111111111234" not in page.text
    assert "Betalningsuppgifter" in page.text and "Telefon" in page.text  # grouped by category
    assert "Fakturering och bokföring" in page.text
    audit = await api.get("/v1/audit-events", params={"subject_id": person["id"]}, headers=staff("audit:read"))
    reads = [e for e in audit.json()["items"] if e["action"] == "personal_data.read"]
    assert reads and reads[0]["role"] == "subject" and reads[0]["actor"] == person["id"]

    signed_out = await post_form(browser, "/data", "/sign-out")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == f"{CENTER}?signed_out=1"
    assert (await browser.get(f"{CENTER}/data")).status_code == 303
    # The old token opens nothing any more: the session is gone from the database, not only from the browser.
    async with _browser(browser._transport.app) as replay:  # type: ignore[attr-defined]
        replay.cookies.set("wesafe_center", token, domain="t", path=CENTER)
        assert (await replay.get(f"{CENTER}/data")).status_code == 303


async def test_a_wrong_code_is_refused_and_counts(browser, inbox, person):
    page = await browser.get(f"{CENTER}/sign-in")
    asked = await browser.post(f"{CENTER}/sign-in", data={"email": person["email"], "csrf_token": form_token(page)})
    code = await inbox.wait_for_code(person["email"])
    wrong = "000000" if code != "000000" else "111111"
    refused = await browser.post(f"{CENTER}/sign-in/code",
                                 data={"email": person["email"], "code": wrong, "csrf_token": form_token(asked)})
    assert refused.status_code == 401 and "Koden stämmer inte" in refused.text
    assert (await browser.get(f"{CENTER}/data")).status_code == 303


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(browser, inbox):
    address = unique_email("nobody")
    page = await browser.get(f"{CENTER}/sign-in")
    asked = await browser.post(f"{CENTER}/sign-in", data={"email": address, "csrf_token": form_token(page)})
    assert asked.status_code == 200 and "Om adressen finns hos oss" in asked.text
    assert inbox.to(address) == []


async def test_an_idle_session_ends(browser, inbox, person, center_app):
    await sign_in(browser, inbox, person["email"])
    async with center_app.state.sessionmaker() as session:
        await session.execute(update(CenterSession).where(CenterSession.subject_id == uuid.UUID(person["id"]))
                              .values(last_seen_at=utc_now() - timedelta(minutes=16)))
        await session.commit()
    assert (await browser.get(f"{CENTER}/data")).status_code == 303


async def test_the_sweep_deletes_ended_sessions(browser, inbox, api, person, center_app):
    await sign_in(browser, inbox, person["email"])
    async with center_app.state.sessionmaker() as session:
        await session.execute(update(CenterSession).where(CenterSession.subject_id == uuid.UUID(person["id"]))
                              .values(last_seen_at=utc_now() - timedelta(minutes=16)))
        await session.commit()
    run = await sweep(api)
    assert run["report"]["purged"]["privacy_center_sessions"] >= 1
    async with center_app.state.sessionmaker() as session:
        left = await session.execute(select(CenterSession).where(CenterSession.subject_id == uuid.UUID(person["id"])))
        assert left.first() is None


async def test_names_stay_text(browser, inbox, api):
    subject = await make_subject(api, name="<script>alert('x')</script>")
    await sign_in(browser, inbox, subject["email"])
    page = await browser.get(f"{CENTER}/data")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text


# --- changes: consents, marketing, requests ---------------------------------------------------------------------


async def test_withdrawing_a_consent_records_a_web_event_with_evidence(browser, inbox, api, person):
    granted = await api.post(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]),
                             json={"purpose": "newsletter", "status": "granted", "channel": "email"})
    assert granted.status_code == 201
    await sign_in(browser, inbox, person["email"])
    page = await browser.get(f"{CENTER}/consents")
    assert 'role="switch" aria-checked="true" aria-labelledby="purpose-newsletter"' in page.text
    done = await post_form(browser, "/consents", "/consents", purpose="newsletter", status="withdrawn")
    assert done.status_code == 303
    event_id = re.search(r"receipt=([0-9a-f-]+)", done.headers["location"]).group(1)
    shown = await browser.get(done.headers["location"])
    assert event_id in shown.text and 'aria-checked="false" aria-labelledby="purpose-newsletter"' in shown.text
    history = (await api.get(f"/v1/subjects/{person['id']}/consents/history", headers=as_subject(person["id"]))).json()
    latest = history["items"][0]
    assert latest["id"] == event_id and latest["status"] == "withdrawn" and latest["channel"] == "web"
    assert latest["evidence"]["user_agent"] == "TestBrowser/1.0"
    assert latest["evidence"]["ip"].startswith("198.18.")
    assert "Nyhetsbrev" in latest["evidence"]["text_shown"] or "newsletter" in latest["evidence"]["text_shown"].lower()
    audit = await api.get("/v1/audit-events", params={"subject_id": person["id"]}, headers=staff("audit:read"))
    assert any(e["action"] == "consent.withdrawn" and e["role"] == "subject" for e in audit.json()["items"])


async def test_opting_out_of_sms_is_what_the_marketing_check_says(browser, inbox, api, person):
    phone = next(i["value"] for i in (await api.get(f"/v1/subjects/{person['id']}/data",
                                                     headers=as_subject(person["id"]))).json()["items"]
                 if i["category"] == "phone")
    await sign_in(browser, inbox, person["email"])
    done = await post_form(browser, "/marketing", "/marketing", channel="sms", state="opted_out")
    assert done.status_code == 303
    assert "Ändringen är sparad" in (await browser.get(done.headers["location"])).text
    check = await api.post("/v1/marketing/check", headers=staff("consents:read"),
                           json={"contacts": [{"phone": phone, "channel": "sms"}]})
    assert check.json()["results"][0]["allowed"] is False
    assert check.json()["results"][0]["reason"] == "opted_out"
    channels = (await api.get(f"/v1/subjects/{person['id']}/marketing", headers=as_subject(person["id"]))).json()
    assert channels["channels"]["sms"] == "opted_out" and channels["channels"]["email"] == "allowed"


async def test_an_access_request_filed_here_is_downloaded_in_three_formats(browser, inbox, api, person):
    await sign_in(browser, inbox, person["email"])
    filed = await post_form(browser, "/requests", "/requests", type="access", details="Allt ni har om mig")
    assert filed.status_code == 303
    request_id = re.search(r"/requests/([0-9a-f-]+)", filed.headers["location"]).group(1)
    page = await browser.get(filed.headers["location"])
    assert "Vi har tagit emot din begäran" in page.text and "Mottagen" in page.text
    assert "package" not in page.text
    assert (await browser.get(f"{CENTER}/requests/{request_id}/package")).status_code == 409
    for action in ("verify", "start", "complete"):
        moved = await api.post(f"/v1/rights-requests/{request_id}/actions", json={"action": action},
                               headers=REQUEST_MANAGER)
        assert moved.status_code == 200
    page = await browser.get(f"{CENTER}/requests/{request_id}")
    assert f"/requests/{request_id}/package?format=csv" in page.text
    as_json = await browser.get(f"{CENTER}/requests/{request_id}/package?format=json")
    assert as_json.headers["content-type"] == "application/json" and as_json.json()["subject"]["id"] == person["id"]
    assert as_json.headers["cache-control"] == "no-store"
    as_zip = await browser.get(f"{CENTER}/requests/{request_id}/package?format=csv")
    assert as_zip.headers["content-type"] == "application/zip" and as_zip.content[:2] == b"PK"
    as_html = await browser.get(f"{CENTER}/requests/{request_id}/package?format=html")
    assert as_html.headers["content-type"].startswith("text/html") and "Anna Svensson" in as_html.text
    assert "1234" in as_json.text and CARD not in as_json.text


async def test_a_request_names_its_purpose_in_the_pages_language(browser, inbox, person):
    await sign_in(browser, inbox, person["email"])
    filed = await post_form(browser, "/requests", "/requests", type="objection", purpose="newsletter")
    assert filed.status_code == 303, filed.text
    assert "<dd>Nyhetsbrev</dd>" in (await browser.get(filed.headers["location"])).text
    assert "<dd>Newsletter</dd>" in (await browser.get(filed.headers["location"] + "&lang=en")).text


async def test_an_objection_without_its_purpose_is_refused_in_the_pages_language(browser, inbox, api, person):
    await sign_in(browser, inbox, person["email"])
    refused = await post_form(browser, "/requests", "/requests", type="objection")
    assert refused.status_code == 422 and "En invändning gäller ett ändamål" in refused.text
    english = await post_form(browser, "/requests?lang=en", "/requests?lang=en", type="objection")
    assert english.status_code == 422 and "An objection is to a purpose" in english.text
    assert (await api.get("/v1/rights-requests", headers=as_subject(person["id"]))).json()["items"] == []


async def test_another_subjects_request_is_not_found(browser, inbox, api, person):
    other = await make_subject(api)
    theirs = await complete_request(api, other["id"], "access")
    await sign_in(browser, inbox, person["email"])
    assert (await browser.get(f"{CENTER}/requests/{theirs['id']}")).status_code == 404
    assert (await browser.get(f"{CENTER}/requests/{theirs['id']}/package")).status_code == 404


async def test_recipients_call_out_third_countries(browser, inbox, api, person):
    inside = await make_processor(api, name="Nordic Mail AB", country="SE")
    outside = await make_processor(api, name="Faraway Analytics Inc", country="US")
    await report_disclosure(api, inside["id"], person["id"], ["email"], "service")
    await report_disclosure(api, outside["id"], person["id"], ["name", "email"], "service")
    await sign_in(browser, inbox, person["email"])
    page = await browser.get(f"{CENTER}/recipients?lang=en")
    assert "Nordic Mail AB" in page.text and "Faraway Analytics Inc" in page.text
    assert page.text.count("Outside the EU/EEA") == 1


# --- CSRF -------------------------------------------------------------------------------------------------------


async def test_a_form_without_its_token_changes_nothing(browser, inbox, api, person):
    await sign_in(browser, inbox, person["email"])
    for token in (None, "forged", form_token(await _browser(browser._transport.app).get(f"{CENTER}/sign-in"))):  # type: ignore[attr-defined]
        fields = {"purpose": "newsletter", "status": "granted"} | ({"csrf_token": token} if token else {})
        refused = await browser.post(f"{CENTER}/consents", data=fields)
        assert refused.status_code == 403 and "Ingenting har ändrats" in refused.text
    state = (await api.get(f"/v1/subjects/{person['id']}/consents", headers=as_subject(person["id"]))).json()
    assert not any(s["purpose"] == "newsletter" and s["status"] == "granted" for s in state["items"])


async def test_every_form_in_the_center_needs_its_token(browser):
    posts = [r.path for r in center_router.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert len(posts) >= 10
    for path in posts:
        refused = await browser.post(path, data={"email": "a@example.se", "code": "123456", "type": "access",
                                                 "purpose": "newsletter", "status": "granted", "channel": "sms",
                                                 "state": "opted_out"})
        assert refused.status_code == 403, path


# --- people who are not registered ------------------------------------------------------------------------------


async def _file_without_account(browser: httpx.AsyncClient, inbox: Inbox, address: str, type_: str) -> httpx.Response:
    page = await browser.get(f"{CENTER}/no-account")
    before = len(inbox.to(address))
    asked = await browser.post(f"{CENTER}/no-account", data={"email": address, "csrf_token": form_token(page)})
    assert asked.status_code == 200
    code = await inbox.wait_for_code(address, after=before)
    proved = await browser.post(f"{CENTER}/no-account/code",
                                data={"email": address, "code": code, "csrf_token": form_token(asked)})
    assert proved.status_code == 303
    form = await browser.get(f"{CENTER}/no-account")
    assert address in form.text and 'name="type"' in form.text
    return await browser.post(f"{CENTER}/no-account/request", data={"type": type_, "csrf_token": form_token(form)})


async def test_a_person_without_an_account_files_a_request_that_staff_close_with_no_data(browser, inbox, api):
    address = unique_email("stranger")
    sent = await _file_without_account(browser, inbox, address, "access")
    assert sent.status_code == 200 and address in sent.text
    listed = await api.get("/v1/rights-requests", params={"unmatched": "true", "limit": 500},
                           headers=staff("requests:read"))
    mine = [r for r in listed.json()["items"] if r["requester_email"] == address]
    assert len(mine) == 1 and mine[0]["subject_id"] is None and mine[0]["status"] == "received"
    for action in ("verify", "start", "complete"):
        moved = await api.post(f"/v1/rights-requests/{mine[0]['id']}/actions", json={"action": action},
                               headers=REQUEST_MANAGER)
        assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "completed"
    assert len(inbox.to(address)) >= 3  # the code, the receipt of the request, and the answer
    # The proof is spent with the request: the next one needs a new code.
    assert 'name="email"' in (await browser.get(f"{CENTER}/no-account")).text


async def test_a_known_person_without_signing_in_gets_the_request_joined_to_them(browser, inbox, api, person):
    sent = await _file_without_account(browser, inbox, person["email"], "erasure")
    assert sent.status_code == 200
    theirs = (await api.get("/v1/rights-requests", headers=as_subject(person["id"]))).json()["items"]
    assert [r["type"] for r in theirs] == ["erasure"]


async def test_a_proof_code_does_not_sign_anyone_in(browser, inbox, person):
    page = await browser.get(f"{CENTER}/no-account")
    asked = await browser.post(f"{CENTER}/no-account", data={"email": person["email"], "csrf_token": form_token(page)})
    code = await inbox.wait_for_code(person["email"])
    refused = await browser.post(f"{CENTER}/sign-in/code",
                                 data={"email": person["email"], "code": code, "csrf_token": form_token(asked)})
    assert refused.status_code == 401
    assert (await browser.get(f"{CENTER}/data")).status_code == 303


# --- restricted and erased subjects -----------------------------------------------------------------------------


async def test_a_restricted_subject_is_told(browser, inbox, api, person):
    await complete_request(api, person["id"], "restriction")
    await sign_in(browser, inbox, person["email"])
    for path in ("/data", "/consents", "/marketing", "/requests"):
        assert "Behandlingen av dina personuppgifter är begränsad" in (await browser.get(f"{CENTER}{path}")).text


async def test_after_erasure_the_person_sees_only_what_the_law_keeps_and_can_change_nothing(browser, inbox, api, person):
    address = person["email"]
    await complete_request(api, person["id"], "erasure")
    await sign_in(browser, inbox, address)
    data = await browser.get(f"{CENTER}/data")
    assert "Dina personuppgifter är raderade" in data.text
    assert "****1234" in data.text and "Sparas till" in data.text  # billing, kept for bookkeeping, with why
    assert "Telefon" not in data.text and "Anna Svensson" not in data.text
    consents = await browser.get(f"{CENTER}/consents")
    assert 'role="switch"' not in consents.text
    marketing = await browser.get(f"{CENTER}/marketing")
    assert 'name="channel"' not in marketing.text
    requests = await browser.get(f"{CENTER}/requests")
    assert 'name="type"' not in requests.text and "Radering" in requests.text
    # Staff still find nobody by the address.
    found = await api.get("/v1/subjects", params={"email": address}, headers=staff("subjects:read"))
    assert found.json()["items"] == []


async def test_an_erased_subject_with_nothing_kept_cannot_sign_in(browser, inbox, api):
    subject = await make_subject(api)
    await complete_request(api, subject["id"], "erasure")
    page = await browser.get(f"{CENTER}/sign-in")
    await browser.post(f"{CENTER}/sign-in", data={"email": subject["email"], "csrf_token": form_token(page)})
    sent = len(inbox.to(subject["email"]))
    await browser.post(f"{CENTER}/sign-in", data={"email": subject["email"], "csrf_token": form_token(page)})
    assert len(inbox.to(subject["email"])) == sent  # no login code (only the request's own mails)
