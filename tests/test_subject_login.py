"""The privacy center's login: one-time codes by e-mail, through a real SMTP server started by the test."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from app.auth.models import LoginCode
from app.main import create_app
from tests.support import (
    Inbox,
    app_settings,
    assert_problem,
    make_subject,
    restore_cookie_categories,
    smtp_inbox,
    unique_email,
)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_inbox() as inbox:
        yield inbox, inbox.port


@pytest.fixture(scope="module")
async def login_app(database_url, smtp):
    _, port = smtp
    application = create_app(app_settings(database_url=database_url, log_level="WARNING", mail_backend="smtp",
                                          smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def center(login_app) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own: a client address no other test uses, so that per-IP limits are this test's."""
    address = f"198.51.100.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=login_app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def ask(client, address: str) -> httpx.Response:
    return await client.post("/v1/auth/subject-login", json={"email": address})


async def verify(client, address: str, code: str) -> httpx.Response:
    return await client.post("/v1/auth/subject-login/verify", json={"email": address, "code": code})


async def wait_for_mail(inbox: Inbox, address: str) -> str:
    for _ in range(50):
        if any(m["To"] == address for m in inbox.messages):
            return inbox.code_for(address)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail to {address}")


async def test_a_code_by_mail_logs_the_subject_in(center, client, smtp):
    inbox, _ = smtp
    subject = await make_subject(client)
    response = await ask(center, subject["email"].upper())
    assert response.status_code == 202
    code = await wait_for_mail(inbox, subject["email"])
    message = next(m for m in inbox.messages if m["To"] == subject["email"])
    assert "inloggningskod" in message["Subject"] and "login code" in message["Subject"]
    token = await verify(center, subject["email"], code)
    assert token.status_code == 200 and token.json()["expires_in"] == 900
    me = await center.get("/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == subject["id"]
    assert_problem(await verify(center, subject["email"], code), 401)  # used once


async def test_the_answer_never_tells_whether_an_address_is_known(center, client, smtp):
    inbox, _ = smtp
    known, stranger = (await make_subject(client))["email"], unique_email("stranger")
    answers = [await ask(center, address) for address in (known, stranger)]
    assert answers[0].status_code == answers[1].status_code == 202
    assert answers[0].json() == answers[1].json()
    await wait_for_mail(inbox, known)
    assert not any(m["To"] == stranger for m in inbox.messages)
    refused = [await verify(center, address, "123456") for address in (stranger, known)]
    assert [r.status_code for r in refused] == [401, 401]
    assert refused[0].json()["detail"] == refused[1].json()["detail"]


async def test_five_wrong_tries_use_the_code_up(center, client, smtp):
    inbox, _ = smtp
    subject = await make_subject(client)
    await ask(center, subject["email"])
    code = await wait_for_mail(inbox, subject["email"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert_problem(await verify(center, subject["email"], wrong), 401)
    assert_problem(await verify(center, subject["email"], code), 401)


async def test_a_code_lasts_ten_minutes(center, client, smtp, db):
    inbox, _ = smtp
    subject = await make_subject(client)
    await ask(center, subject["email"])
    code = await wait_for_mail(inbox, subject["email"])
    async with db() as session:
        await session.execute(update(LoginCode).where(LoginCode.subject_id == uuid.UUID(subject["id"]))
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    assert_problem(await verify(center, subject["email"], code), 401)


async def test_a_new_code_replaces_the_old(center, client, smtp):
    inbox, _ = smtp
    subject = await make_subject(client)
    await ask(center, subject["email"])
    first = await wait_for_mail(inbox, subject["email"])
    inbox.messages.clear()
    await ask(center, subject["email"])
    second = await wait_for_mail(inbox, subject["email"])
    if first != second:
        assert_problem(await verify(center, subject["email"], first), 401)
    assert (await verify(center, subject["email"], second)).status_code == 200


async def test_rate_limited_per_address_and_per_ip(center, login_app):
    address = unique_email("flood")
    statuses = [(await ask(center, address)).status_code for _ in range(6)]
    assert statuses == [202] * 5 + [429]
    limited = await ask(center, address)
    assert int(limited.headers["retry-after"]) > 0
    # Another browser is not held back by this address's limit, but one browser cannot try many addresses.
    transport = httpx.ASGITransport(app=login_app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as other:
        assert (await ask(other, unique_email())).status_code == 202
        statuses = [(await ask(other, unique_email())).status_code for _ in range(40)]
    assert 429 in statuses and statuses.index(429) == 29


async def test_codes_are_six_digits(center):
    for code in ("12345", "1234567", "abcdef"):
        assert_problem(await verify(center, unique_email(), code), 422)


async def test_logging_in_with_a_visitor_id_makes_the_device_choices_the_subjects(center, client, smtp):
    inbox, _ = smtp
    await restore_cookie_categories(client)
    subject = await make_subject(client)
    visitor = await center.post("/v1/visitor-consents", json={"choices": {"analytics": True}})
    visitor_id = visitor.json()["visitor_id"]
    await ask(center, subject["email"])
    code = await wait_for_mail(inbox, subject["email"])
    token = await center.post("/v1/auth/subject-login/verify",
                              json={"email": subject["email"], "code": code, "visitor_id": visitor_id})
    assert token.status_code == 200
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    states = (await center.get(f"/v1/subjects/{subject['id']}/consents", headers=bearer)).json()["items"]
    assert {s["purpose"]: s["status"] for s in states} == {
        "analytics": "granted", "preferences": "withdrawn", "marketing": "withdrawn"}


async def test_a_stale_visitor_id_does_not_stop_a_login(center, client, smtp):
    inbox, _ = smtp
    subject = await make_subject(client)
    await ask(center, subject["email"])
    code = await wait_for_mail(inbox, subject["email"])
    token = await center.post("/v1/auth/subject-login/verify",
                              json={"email": subject["email"], "code": code, "visitor_id": "gone-long-ago"})
    assert token.status_code == 200
