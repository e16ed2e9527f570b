"""Login codes under attack (issue 17, items 4 and 6): racing requests cannot exceed the limits, a flood over
many addresses meets a ceiling, and the answer takes as long for an unknown address as for a known one.

Concurrency goes through a live uvicorn server (ASGITransport would run the requests one after another),
with each request forwarded for a client address of its own in 100.64.0.0/10, a range no other test uses, so
that the per-IP limits are this file's and never the reason for a 429. Attempts stay in the database for the
15-minute window, so each run picks fresh addresses."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select, update

from app.auth import service as auth
from app.auth.models import LoginAttempt, LoginCode
from app.core.errors import TooManyRequests
from app.main import create_app
from tests.support import (
    Inbox,
    app_settings,
    assert_problem,
    live_server,
    make_subject,
    smtp_inbox,
    unique_email,
)

_ADDRESSES = itertools.count(1)
# Where this run starts counting: a random /24 of 100.64.0.0/10 (a run uses a few hundred addresses).
_BASE = (64 + random.randrange(64), random.randrange(256))


def fresh_ip() -> str:
    """A client address in 100.64.0.0/10 that this run has not used yet."""
    n = next(_ADDRESSES)
    return f"100.{_BASE[0]}.{(_BASE[1] + n // 250) % 256}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    """A real SMTP server, so that the live server mails codes as in production (where a mail costs far more
    than a database write: sent before the answer, it would show in the timing)."""
    with smtp_inbox() as inbox:
        yield inbox


@pytest.fixture(scope="module")
def server(tmp_path_factory, inbox) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("login-limits")
    # The ceiling out of the way here: it has a test of its own, on an app of its own.
    with live_server(
        folder,
        PRIVACY_LOGIN_CODES_PER_MINUTE="100000",
        PRIVACY_MAIL_BACKEND="smtp",
        PRIVACY_SMTP_HOST="127.0.0.1",
        PRIVACY_SMTP_PORT=str(inbox.port),
        PRIVACY_SMTP_STARTTLS="false",
    ) as served:
        yield served.url


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server, timeout=60, limits=httpx.Limits(max_connections=200, max_keepalive_connections=200)
    ) as client:
        yield client


def ask(http: httpx.AsyncClient, address: str, ip: str) -> asyncio.Future[httpx.Response]:
    return http.post("/v1/auth/subject-login", json={"email": address}, headers={"X-Forwarded-For": ip})


def verify(http: httpx.AsyncClient, address: str, code: str, ip: str) -> asyncio.Future[httpx.Response]:
    return http.post(
        "/v1/auth/subject-login/verify",
        json={"email": address, "code": code},
        headers={"X-Forwarded-For": ip},
    )


async def live_codes(db, email_hash: str, purpose: str) -> list[LoginCode]:
    async with db() as session:
        rows = await session.scalars(
            select(LoginCode).where(
                LoginCode.email_hash == email_hash,
                LoginCode.purpose == purpose,
                LoginCode.used_at.is_(None),
                LoginCode.expires_at > datetime.now(UTC),
            )
        )
        return list(rows)


async def attempts(db, email_hash: str, kind: str) -> int:
    async with db() as session:
        return await session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.email_hash == email_hash, LoginAttempt.kind == kind)
        )


def hash_of(app, address: str) -> str:
    return app.state.runtime.keys.contacts.email(address)


def assert_limited(response: httpx.Response) -> None:
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) > 0


# --- item 4: the limits hold when requests race ------------------------------------------------------------


async def test_racing_code_requests_get_the_limit_and_leave_one_valid_code(http, client, app, db, inbox):
    subject = await make_subject(client)
    answers = await asyncio.gather(*(ask(http, subject["email"], fresh_ip()) for _ in range(25)))
    accepted = [a for a in answers if a.status_code == 202]
    for refused in (a for a in answers if a.status_code != 202):
        assert_limited(refused)
    assert len(accepted) == auth.RATE_LIMITS["request"][0]
    assert len(await live_codes(db, hash_of(app, subject["email"]), "login")) == 1
    await inbox.wait_for_mail(subject["email"], after=len(accepted) - 1)  # one mail per accepted request
    assert await attempts(db, hash_of(app, subject["email"]), "request") == 5


async def test_racing_wrong_codes_are_counted_exactly(http, client, app, db):
    subject = await make_subject(client)
    assert (await ask(http, subject["email"], fresh_ip())).status_code == 202
    wrong = "000000"  # one chance in a million of being the code: the test would see a 200
    answers = await asyncio.gather(*(verify(http, subject["email"], wrong, fresh_ip()) for _ in range(100)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * auth.RATE_LIMITS["verify"][0] + [429] * 90
    for refused in (a for a in answers if a.status_code == 429):
        assert_limited(refused)
    assert await attempts(db, hash_of(app, subject["email"]), "verify") == 10
    # The code took its five tries and no more, and is used up.
    async with db() as session:
        code = await session.scalar(select(LoginCode).where(LoginCode.subject_id == uuid.UUID(subject["id"])))
    assert code.attempts == auth.CODE_ATTEMPTS and code.used_at is not None


async def test_racing_requests_from_one_ip_get_its_limit_exactly(http):
    ip = fresh_ip()
    answers = await asyncio.gather(*(ask(http, unique_email("one-ip"), ip) for _ in range(40)))
    assert sum(a.status_code == 202 for a in answers) == auth.RATE_LIMITS["request"][1]
    for refused in (a for a in answers if a.status_code != 202):
        assert_limited(refused)


async def _each_in_its_own_session(db, calls) -> list[object]:
    """Run each call with a session of its own, concurrently, committing like a route does (a refused login
    is committed too: it counts); what each returned or raised."""

    async def one(call):
        async with db() as session:
            try:
                result = await call(session)
            except auth.LoginRefused as refused:
                await session.commit()
                return refused
            except TooManyRequests as limited:
                await session.rollback()
                return limited
            await session.commit()
            return result

    return await asyncio.gather(*(one(call) for call in calls))


async def test_racing_proof_codes_hold_the_same_limits(app, db):
    """The privacy center's proof codes (its form for people who are not registered) share the machinery."""
    address = unique_email("proof-race")
    results = await _each_in_its_own_session(
        db, [lambda s: auth.request_proof_code(s, address, ip=fresh_ip()) for _ in range(25)]
    )
    assert sum(not isinstance(r, Exception) for r in results) == 5
    assert all(isinstance(r, TooManyRequests) for r in results if isinstance(r, Exception))
    assert len(await live_codes(db, hash_of(app, address), "proof")) == 1
    results = await _each_in_its_own_session(
        db, [lambda s: auth.verify_proof_code(s, address, "000000", ip=fresh_ip()) for _ in range(40)]
    )
    assert sum(isinstance(r, auth.LoginRefused) for r in results) == 10
    assert sum(isinstance(r, TooManyRequests) for r in results) == 30
    assert await attempts(db, hash_of(app, address), "verify") == 10


# --- item 4: a ceiling across all addresses ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def ceiling_app(database_url):
    application = create_app(
        app_settings(database_url=database_url, log_level="WARNING", login_codes_per_minute=10)
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_a_flood_over_many_addresses_meets_the_ceiling(ceiling_app, client):
    sent = []

    async def record(mail):
        sent.append(mail)

    ceiling_app.state.runtime.mailer.send = record
    known = [(await make_subject(client))["email"] for _ in range(3)]
    addresses = known + [unique_email("cannon") for _ in range(22)]

    async def one(address: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=ceiling_app, client=(fresh_ip(), 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as browser:
            return await browser.post("/v1/auth/subject-login", json={"email": address})

    answers = await asyncio.gather(*(one(a) for a in addresses))
    assert sum(a.status_code == 202 for a in answers) == 10
    for refused in (a for a in answers if a.status_code != 202):
        assert_limited(refused)
        assert int(refused.headers["retry-after"]) <= 60
    assert len(sent) <= 3
    # Proof codes draw on the same ceiling.
    async with ceiling_app.state.sessionmaker() as session:
        with pytest.raises(TooManyRequests):
            await auth.request_proof_code(session, unique_email("cannon"), ip=fresh_ip())


# --- item 6: the answer takes as long whether or not the address is known --------------------------------


def _statements(app) -> tuple[list[str], object]:
    """The SQL the app sends, as text without values, while the returned listener is attached."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    return seen, record


async def test_asking_for_a_code_does_the_same_database_work_for_an_unknown_address(app, client):
    """The deterministic half of the timing rule: the same statements, in the same order, for a registered
    address and for one nobody has (values differ, and only a registered address is mailed)."""
    transport = httpx.ASGITransport(app=app, client=(fresh_ip(), 40000))
    work = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as browser:
        for kind, address in (
            ("warm-up", unique_email("warm")),
            ("known", (await make_subject(client))["email"]),
            ("unknown", unique_email("nobody")),
        ):
            seen, listener = _statements(app)
            try:
                assert (
                    await browser.post("/v1/auth/subject-login", json={"email": address})
                ).status_code == 202
            finally:
                event.remove(app.state.engine.sync_engine, "before_cursor_execute", listener)
            work[kind] = seen
    assert work["known"] == work["unknown"]


async def test_asking_for_a_code_takes_as_long_for_an_unknown_address(http, client):
    """Interleaved requests for registered and unknown addresses (each from a client address of its own),
    through a live server as an attacker would time them: the medians stay within noise, a quarter of the
    faster one or 2 ms, whichever is larger. A loaded 2-core machine stretches both and adds noise of that
    size, so a round that misses is measured again (each address may be asked 5 times): up to 3 rounds of 60
    pairs, and the test fails only if every round does (a difference that is really there shows in all)."""
    pairs, rounds = 60, []
    known = [(await make_subject(client))["email"] for _ in range(pairs)]
    unknown = [unique_email("nobody") for _ in range(pairs)]
    for address in known[:3] + unknown[:3]:  # warm up both paths
        assert (await ask(http, address, fresh_ip())).status_code == 202
    for _ in range(3):
        took: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(pairs):
            order = [("known", known[i]), ("unknown", unknown[i])]
            for kind, address in order if i % 2 else order[::-1]:
                started = time.perf_counter()
                answer = await ask(http, address, fresh_ip())
                took[kind].append(time.perf_counter() - started)
                assert answer.status_code == 202
        a, b = statistics.median(took["known"]), statistics.median(took["unknown"])
        rounds.append(f"{a * 1000:.1f} ms known vs {b * 1000:.1f} ms unknown")
        if abs(a - b) <= max(0.25 * min(a, b), 0.002):
            return
    raise AssertionError(f"the medians differ beyond noise in every round: {rounds}")


async def test_the_code_stored_for_an_unknown_address_signs_nobody_in(app, db):
    """Even guessed right (here: set to a code the test knows), the code an unknown address got is refused,
    and the right code counts as a try like a wrong one."""
    address, ip = unique_email("nobody"), fresh_ip()
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as browser:
        assert (await browser.post("/v1/auth/subject-login", json={"email": address})).status_code == 202
        email_hash = hash_of(app, address)
        [stored] = await live_codes(db, email_hash, "login")
        assert stored.subject_id is None
        known_hash = app.state.runtime.keys.contacts.hash(f"login-code:{email_hash}:123456")
        async with db() as session:
            await session.execute(
                update(LoginCode).where(LoginCode.id == stored.id).values(code_hash=known_hash)
            )
            await session.commit()
        refused = await browser.post(
            "/v1/auth/subject-login/verify", json={"email": address, "code": "123456"}
        )
        assert_problem(refused, 401)
    assert await live_codes(db, email_hash, "login") == []  # used up by the attempt
