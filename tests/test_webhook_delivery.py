"""Webhook delivery under time: a lease per delivery (the send's timeout plus a margin, taken just before the
send) with an owner, slow receivers, two workers at once, a worker that stalls or dies. Real HTTP receivers on
loopback; the timeouts are short (1 s, lease 1.5 s) so that the tests are quick."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import unit_of_work
from app.main import create_app
from app.webhooks import delivery
from app.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.support import ADMIN, app_settings, make_subject, staff
from tests.webhook_receiver import Receiver

TIMEOUT, MARGIN = 1.0, 0.5
LEASE = TIMEOUT + MARGIN


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


@pytest.fixture(scope="module")
async def quick_app(database_url):
    """Loopback receivers allowed; a send times out after 1 s and its lease is 1.5 s."""
    application = create_app(
        app_settings(
            database_url=database_url,
            log_level="WARNING",
            webhook_allow_private_addresses=True,
            webhook_timeout_seconds=TIMEOUT,
            webhook_lease_margin_seconds=MARGIN,
            webhook_concurrency=4,
        )
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(quick_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=quick_app), base_url="http://t") as http:
        yield http


@pytest.fixture(scope="module", autouse=True)
async def only_this_modules_endpoints(quick_app) -> None:
    """The worker rounds here serve the whole database, and one round serves the 100 endpoints that have waited
    longest: endpoints that earlier test modules left active, with deliveries due to receivers long gone,
    would take the rounds these tests time. They are disabled (their deliveries cancelled) first."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=quick_app), base_url="http://t") as http:
        params: dict[str, str | int] = {"limit": 500}
        while True:
            page = (await http.get("/v1/webhook-endpoints", params=params, headers=ADMIN)).json()
            for endpoint in page["items"]:
                if endpoint["disabled_at"] is None:
                    response = await http.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=ADMIN)
                    assert response.status_code == 204, response.text
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]


@pytest.fixture
async def subscribe(api, receivers):
    """A receiver (taking `delay` per request) subscribed to consent.granted; its endpoint is disabled after
    the test, so that later tests' events do not go there."""
    created: list[str] = []

    async def register(delay: float = 0.0) -> tuple[Receiver, str]:
        receiver = Receiver(delay)
        receivers.append(receiver)
        response = await api.post(
            "/v1/webhook-endpoints",
            headers=ADMIN,
            json={"url": receiver.url, "event_types": ["consent.granted"]},
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
        return receiver, response.json()["id"]

    yield register
    for endpoint_id in created:
        await api.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=ADMIN)


async def grant(api, count: int) -> None:
    subject = await make_subject(api)
    for _ in range(count):
        response = await api.post(
            f"/v1/subjects/{subject['id']}/consents",
            headers=staff("consents:write"),
            json={"purpose": "newsletter", "status": "granted", "channel": "crm"},
        )
        assert response.status_code == 201, response.text


async def deliveries_of(quick_app, endpoint_id: str) -> list[WebhookDelivery]:
    async with quick_app.state.sessionmaker() as session:
        return list(
            (
                await session.execute(
                    select(WebhookDelivery).where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
                )
            )
            .scalars()
            .all()
        )


async def attempts_of(quick_app, endpoint_id: str) -> int:
    async with quick_app.state.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WebhookAttempt)
                .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
            )
        )


async def one_round(quick_app) -> int:
    async with delivery.http_client(quick_app.state.settings) as http:
        return await delivery.run_once(quick_app.state.sessionmaker, quick_app.state.settings, http)


async def keep_working(quick_app, endpoint_ids: list[str], *, within: float = 30) -> None:
    """A worker as `privacy worker` runs: rounds, a short pause when idle, until every delivery to these
    endpoints is delivered."""
    deadline = time.monotonic() + within
    async with delivery.http_client(quick_app.state.settings) as http:
        while time.monotonic() < deadline:
            if not await delivery.run_once(quick_app.state.sessionmaker, quick_app.state.settings, http):
                open_ = [
                    d
                    for e in endpoint_ids
                    for d in await deliveries_of(quick_app, e)
                    if d.status != "delivered"
                ]
                if not open_:
                    return
                await asyncio.sleep(0.05)
    raise AssertionError("the deliveries were not all delivered in time")


@pytest.fixture
def old_lease(monkeypatch):
    """Before the fix one lease (delivery.LEASE, 2 minutes) covered a whole batch of sequential sends of up to
    the timeout each; here it is scaled down with the timeout, so that a batch outlasts it as it did then."""
    monkeypatch.setattr(delivery, "LEASE", timedelta(seconds=LEASE), raising=False)


@pytest.mark.parametrize(("events", "delay"), [(8, 0.4), (5, 0.8)])
async def test_two_workers_and_a_slow_receiver_send_each_event_once_and_record_each_attempt(
    quick_app, api, subscribe, old_lease, events, delay
):
    receiver, endpoint_id = await subscribe(delay)
    await grant(api, events)
    await asyncio.gather(keep_working(quick_app, [endpoint_id]), keep_working(quick_app, [endpoint_id]))
    assert len(receiver.ids) == events and len(set(receiver.ids)) == events, receiver.ids
    assert await attempts_of(quick_app, endpoint_id) == len(receiver.ids)  # every request sent is recorded
    assert {d.status for d in await deliveries_of(quick_app, endpoint_id)} == {"delivered"}


async def test_a_slow_endpoint_does_not_hold_up_the_others(quick_app, api, subscribe):
    slow, _ = await subscribe(0.8)
    fast, _ = await subscribe(0.0)
    await grant(api, 3)
    began = time.monotonic()
    await one_round(quick_app)
    assert len(slow.arrivals) == 3 and len(fast.arrivals) == 3
    # The fast endpoint's three are in before the slow one's second: they did not queue behind it.
    assert fast.arrivals[-1][0] < slow.arrivals[1][0], (
        [a - began for a, _ in fast.arrivals],
        [a - began for a, _ in slow.arrivals],
    )
    assert slow.arrivals[-1][0] - began >= 1.6  # the slow one's, one after another


async def test_the_worker_serves_a_fast_endpoint_while_a_slow_one_is_busy(quick_app, api, subscribe):
    slow, slow_id = await subscribe(0.9)
    fast, _ = await subscribe(0.0)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        delivery.serve(quick_app.state.sessionmaker, quick_app.state.settings, stop, interval=0.05)
    )
    try:
        await grant(api, 4)  # the slow endpoint is busy for 3.6 s
        await asyncio.sleep(0.3)
        for expected in (5, 6):
            await grant(api, 1)
            sent = time.monotonic()
            while len(fast.arrivals) < expected:
                assert time.monotonic() - sent < 1.5, "the fast endpoint waited for the slow one"
                await asyncio.sleep(0.02)
        assert len(slow.arrivals) < 6
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=10)
    # It stopped once its sends in flight were done and recorded: nothing is left leased.
    assert "sending" not in {d.status for d in await deliveries_of(quick_app, slow_id)}


async def test_a_stalled_workers_late_outcome_is_recorded_as_an_attempt_only(
    quick_app, api, subscribe, old_lease, monkeypatch
):
    receiver, endpoint_id = await subscribe(0.0)
    await grant(api, 1)
    async with unit_of_work(quick_app.state.sessionmaker) as session:
        await delivery.service.dispatch(session)
    [ours] = await deliveries_of(quick_app, endpoint_id)
    original = delivery.service.record_attempt
    sent = asyncio.Event()

    async def stalls_after_sending_ours(session, delivery_id, **kwargs):
        if delivery_id == ours.id and not sent.is_set():
            sent.set()
            await asyncio.sleep(LEASE + 1)  # a worker stalled after sending, past its lease
        return await original(session, delivery_id, **kwargs)

    async def rounds_until(done: Callable[[], bool]) -> None:
        """Rounds, as `privacy worker` runs them: one round serves the 100 endpoints waiting longest, and in a
        whole suite's database other tests' endpoints may have waited longer than this one."""
        deadline = time.monotonic() + 10
        while not done() and time.monotonic() < deadline:
            await one_round(quick_app)

    monkeypatch.setattr(delivery.service, "record_attempt", stalls_after_sending_ours)
    stalled = asyncio.create_task(rounds_until(sent.is_set))
    await asyncio.wait_for(sent.wait(), timeout=10)
    await asyncio.sleep(LEASE + 0.1)
    await rounds_until(lambda: len(receiver.ids) >= 2)  # another worker: the lease has run out: sent again
    await stalled
    assert len(receiver.ids) == 2 and len(set(receiver.ids)) == 1  # the same message twice: at least once
    [delivered] = await deliveries_of(quick_app, endpoint_id)
    assert delivered.status == "delivered" and delivered.attempts == 1 and delivered.lease_until is None
    detail = (await api.get(f"/v1/webhook-deliveries/{delivered.id}", headers=ADMIN)).json()
    assert [a["status_code"] for a in detail["history"]] == [200, 200]  # both requests are in its history


async def test_a_crashed_workers_delivery_goes_out_again_after_its_short_lease(
    quick_app, api, subscribe, monkeypatch
):
    receiver, endpoint_id = await subscribe(0.0)
    await grant(api, 1)

    async def crash(*_args, **_kwargs):
        raise RuntimeError("worker died after sending")

    monkeypatch.setattr(delivery.service, "record_attempt", crash)
    with pytest.raises(RuntimeError):
        await one_round(quick_app)
    crashed = time.monotonic()
    monkeypatch.undo()
    [leased] = await deliveries_of(quick_app, endpoint_id)
    assert leased.status == "sending" and leased.lease_until <= datetime.now(UTC) + timedelta(seconds=LEASE)
    await one_round(quick_app)
    if time.monotonic() - crashed < LEASE - 0.2:  # (a machine slow enough lets the lease run out first)
        assert len(receiver.ids) == 1  # the lease holds: it may still be in flight
    while len(receiver.ids) < 2:
        assert time.monotonic() - crashed < LEASE + 3, "the delivery waited longer than its lease"
        await one_round(quick_app)
        await asyncio.sleep(0.1)
    assert len(set(receiver.ids)) == 1
    assert [d.status for d in await deliveries_of(quick_app, endpoint_id)] == ["delivered"]


def test_the_workers_backoff_doubles_up_to_its_cap_with_jitter():
    backoff = delivery.Backoff(cap=4)
    waits = [[backoff.next() for _ in range(7)] for _ in range(200) if not backoff.reset()]
    for n, ceiling in enumerate((0.5, 1, 2, 4, 4, 4, 4)):
        column = [run[n] for run in waits]
        assert all(ceiling / 2 <= w <= ceiling for w in column)
        assert max(column) - min(column) > ceiling / 4  # jittered, so that workers do not retry in step
    backoff.reset()
    assert backoff.next() <= 0.5
