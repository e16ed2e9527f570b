"""Webhook delivery: a real HTTP receiver on loopback, signatures checked with the `standardwebhooks` package,
retries, Retry-After, 410, at-least-once, and where webhooks may not go."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.auth.principals import Principal
from app.disclosures import service as disclosures
from app.main import create_app
from app.webhooks import delivery
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.urls import UnsafeURL, resolve
from tests.support import (
    ADMIN,
    app_settings,
    as_processor,
    assert_problem,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)
from tests.webhook_receiver import Receiver

CONSENT_WRITER = staff("consents:write")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
async def hooks_app(database_url):
    """The service as a development setup runs it: loopback receivers allowed (production refuses that)."""
    application = create_app(app_settings(database_url=database_url, log_level="WARNING",
                                          webhook_allow_private_addresses=True))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def hooks(hooks_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hooks_app), base_url="http://t") as http:
        yield http


async def work(app) -> None:
    """What `privacy worker` does, until nothing is due."""
    async with delivery.http_client(app.state.settings) as http:
        while await delivery.run_once(app.state.sessionmaker, app.state.settings, http):
            pass


@pytest.fixture
async def subscribe(hooks, hooks_app):
    """Register endpoints for the test; disable them afterwards so that later tests' events do not go there."""
    created: list[str] = []

    async def register(url: str, event_types: list[str]) -> dict:
        response = await hooks.post("/v1/webhook-endpoints", json={"url": url, "event_types": event_types},
                                    headers=ADMIN)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
        return response.json()

    yield register
    for endpoint_id in created:
        await hooks.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=ADMIN)


async def consent(client, subject_id: str, status: str = "granted") -> dict:
    response = await client.post(f"/v1/subjects/{subject_id}/consents", headers=CONSENT_WRITER,
                                 json={"purpose": "newsletter", "status": status, "channel": "crm"})
    assert response.status_code == 201
    return response.json()


async def deliveries_of(client, endpoint_id: str) -> list[dict]:
    response = await client.get("/v1/webhook-deliveries", params={"endpoint_id": endpoint_id}, headers=ADMIN)
    return response.json()["items"]


async def test_events_are_delivered_signed_per_standard_webhooks(hooks, hooks_app, receiver, subscribe):
    endpoint = await subscribe(receiver.url, ["consent.granted", "consent.withdrawn"])
    assert endpoint["secret"].startswith("whsec_")
    subject = await make_subject(hooks)
    event = await consent(hooks, subject["id"])
    await work(hooks_app)

    [(headers, body)] = receiver.received
    payload = Webhook(endpoint["secret"]).verify(body, headers)  # the PyPI package, not our code
    assert payload["type"] == "consent.granted"
    assert payload["data"]["event_id"] == event["id"] and payload["data"]["subject_id"] == subject["id"]
    assert headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(body, headers)  # another secret does not verify

    [sent] = await deliveries_of(hooks, endpoint["id"])
    assert sent["status"] == "delivered" and sent["attempts"] == 1


async def test_endpoints_get_only_their_event_types_and_only_new_events(hooks, hooks_app, receiver, subscribe):
    subject = await make_subject(hooks)
    await consent(hooks, subject["id"])  # before the subscription: not delivered
    await subscribe(receiver.url, ["consent.withdrawn"])
    await consent(hooks, subject["id"], "granted")
    await consent(hooks, subject["id"], "withdrawn")
    await work(hooks_app)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["consent.withdrawn"]


async def test_a_500_is_retried_and_every_attempt_is_recorded(hooks, hooks_app, receiver, subscribe, db):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    receiver.answers = [(500, {})]
    await consent(hooks, (await make_subject(hooks))["id"])
    before = datetime.now(UTC)
    await work(hooks_app)
    [pending] = await deliveries_of(hooks, endpoint["id"])
    assert pending["status"] == "pending" and pending["attempts"] == 1
    retry_at = datetime.fromisoformat(pending["next_attempt_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=3) < retry_at < before + timedelta(seconds=10)  # 5 s, with jitter

    async with db() as session:  # time passes
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(pending["id"]))
                              .values(next_attempt_at=datetime.now(UTC)))
        await session.commit()
    await work(hooks_app)
    detail = (await hooks.get(f"/v1/webhook-deliveries/{pending['id']}", headers=ADMIN)).json()
    assert detail["status"] == "delivered" and [a["status_code"] for a in detail["history"]] == [500, 200]
    assert detail["event_type"] == "consent.granted"
    first, second = receiver.received
    assert first[0]["webhook-id"] == second[0]["webhook-id"]  # the same message, for receivers to deduplicate


async def test_retry_after_is_honoured(hooks, hooks_app, receiver, subscribe):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    receiver.answers = [(503, {"Retry-After": "600"})]
    await consent(hooks, (await make_subject(hooks))["id"])
    await work(hooks_app)
    [pending] = await deliveries_of(hooks, endpoint["id"])
    retry_at = datetime.fromisoformat(pending["next_attempt_at"].replace("Z", "+00:00"))
    assert retry_at > datetime.now(UTC) + timedelta(seconds=590)


async def test_410_disables_the_endpoint(hooks, hooks_app, receiver, subscribe):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    receiver.answers = [(410, {})]
    subject = await make_subject(hooks)
    await consent(hooks, subject["id"])
    await work(hooks_app)
    gone = (await hooks.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=ADMIN)).json()
    assert gone["disabled_at"] is not None and "410" in gone["disabled_reason"]
    await consent(hooks, subject["id"])
    await work(hooks_app)
    assert len(receiver.received) == 1
    assert [d["status"] for d in await deliveries_of(hooks, endpoint["id"])] == ["failed"]


async def test_a_crash_between_sending_and_recording_sends_again(hooks, hooks_app, receiver, subscribe, db,
                                                                 monkeypatch):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    await consent(hooks, (await make_subject(hooks))["id"])

    async def crash(*_args, **_kwargs):
        raise RuntimeError("worker died after sending")

    monkeypatch.setattr(delivery.service, "record_attempt", crash)
    with pytest.raises(RuntimeError):
        await work(hooks_app)
    monkeypatch.undo()
    assert len(receiver.received) == 1
    [claimed] = await deliveries_of(hooks, endpoint["id"])
    assert claimed["status"] == "sending"  # leased, outcome unknown
    await work(hooks_app)
    assert len(receiver.received) == 1  # the lease still holds: no double send while it might be in flight
    async with db() as session:  # the lease runs out
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(claimed["id"]))
                              .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    await work(hooks_app)
    assert len(receiver.received) == 2 and receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]
    assert (await deliveries_of(hooks, endpoint["id"]))[0]["status"] == "delivered"


async def test_a_rotated_secret_keeps_signing_beside_the_new_one_for_a_day(hooks, hooks_app, receiver, subscribe,
                                                                          db):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    subject = await make_subject(hooks)
    old = endpoint["secret"]

    async def rotate() -> tuple[str, datetime]:
        before = datetime.now(UTC)
        response = await hooks.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=ADMIN)
        assert response.status_code == 200, response.text
        until = response.json()["previous_secret_valid_until"]
        assert until.endswith("Z")
        until_at = datetime.fromisoformat(until.replace("Z", "+00:00"))
        assert before + timedelta(hours=24) <= until_at <= datetime.now(UTC) + timedelta(hours=24)
        return response.json()["secret"], until_at

    async def delivered() -> tuple[dict[str, str], bytes]:
        await consent(hooks, subject["id"])
        await work(hooks_app)
        return receiver.received[-1]

    def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
        try:
            Webhook(secret).verify(body, headers)  # the PyPI package: any one signature in the header may match
        except WebhookVerificationError:
            return False
        return True

    # While the overlap lasts, a receiver still on the old secret and one already on the new both verify.
    new, _ = await rotate()
    headers, body = await delivered()
    assert verifies(old, headers, body) and verifies(new, headers, body)
    timestamp = int(headers["webhook-timestamp"])
    assert headers["webhook-signature"].split(" ") == [
        delivery.sign(secret, headers["webhook-id"], timestamp, body) for secret in (new, old)]  # the new first

    # Rotated again meanwhile: the secret in force until now is the one kept; at most two signatures.
    newest, _ = await rotate()
    headers, body = await delivered()
    assert verifies(newest, headers, body) and verifies(new, headers, body) and not verifies(old, headers, body)
    assert len(headers["webhook-signature"].split(" ")) == 2

    async with db() as session:  # the day passes
        await session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(endpoint["id"]))
                              .values(previous_secret_valid_until=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    headers, body = await delivered()
    assert verifies(newest, headers, body) and not verifies(new, headers, body)
    assert headers["webhook-signature"] == delivery.sign(newest, headers["webhook-id"], int(headers["webhook-timestamp"]),
                                                         body)


async def test_processors_receive_their_own_tasks(hooks, hooks_app, receiver, db):
    other_receiver = Receiver()
    try:
        mine = await make_processor(hooks, webhook_url=receiver.url)
        theirs = await make_processor(hooks, webhook_url=other_receiver.url)
        assert mine["webhook_secret"].startswith("whsec_") and mine["webhook_url"] == receiver.url
        subject = await make_subject(hooks)
        for processor in (mine, theirs):
            await report_disclosure(hooks, processor["id"], subject["id"], ["email"], "newsletter")
        async with hooks_app.state.sessionmaker() as session:
            await disclosures.create_recipient_tasks(session, uuid.UUID(subject["id"]), "erasure",
                                                     actor=Principal(role="staff", sub="dpo"))
            await session.commit()
        await work(hooks_app)
        [(headers, body)] = receiver.received
        payload = Webhook(mine["webhook_secret"]).verify(body, headers)
        assert payload["type"] == "processor_task.created" and payload["data"]["processor_id"] == mine["id"]
        assert payload["data"]["type"] == "erasure" and payload["data"]["subject_id"] == subject["id"]
        [(_, their_body)] = other_receiver.received
        assert json.loads(their_body)["data"]["processor_id"] == theirs["id"]
    finally:
        other_receiver.close()


async def new_task(app, hooks, processor_id: str) -> None:
    """An erasure task for the processor: a subject disclosed to it is erased."""
    subject = await make_subject(hooks)
    await report_disclosure(hooks, processor_id, subject["id"], ["email"], "newsletter")
    async with app.state.sessionmaker() as session:
        await disclosures.create_recipient_tasks(session, uuid.UUID(subject["id"]), "erasure",
                                                 actor=Principal(role="staff", sub="dpo"))
        await session.commit()


async def audited(hooks, action: str, target: str) -> list[tuple[str, str]]:
    response = await hooks.get("/v1/audit-events", params={"action": action, "limit": 500},
                               headers=staff("audit:read"))
    assert response.status_code == 200, response.text
    return [(e["role"], e["actor"]) for e in response.json()["items"] if e["target"] == target]


async def test_a_processor_enables_its_endpoint_again_after_a_delete(hooks, hooks_app, receiver):
    processor = await make_processor(hooks, webhook_url=receiver.url)
    mine = as_processor(processor["id"])
    [endpoint] = (await hooks.get("/v1/webhook-endpoints", headers=mine)).json()["items"]
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    receiver.answers = [(500, {})]  # the first task's delivery waits for a retry...
    await new_task(hooks_app, hooks, processor["id"])
    await work(hooks_app)
    assert (await hooks.delete(path, headers=ADMIN)).status_code == 204  # ...and is cancelled here
    [cancelled] = await deliveries_of(hooks, endpoint["id"])
    assert cancelled["status"] == "cancelled"
    assert_problem(await hooks.post(f"/v1/webhook-deliveries/{cancelled['id']}/redeliver", headers=mine), 409)

    other = await make_processor(hooks)
    assert_problem(await hooks.patch(path, json={"enabled": True}, headers=as_processor(other["id"])), 404)
    enabled = await hooks.patch(path, json={"enabled": True}, headers=mine)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_at"] is None and enabled.json()["disabled_reason"] is None
    assert await audited(hooks, "webhook_endpoint.enabled", endpoint["id"]) == [("processor", processor["id"])]

    # What was cancelled meanwhile stays cancelled; the processor may send it again.
    assert [d["status"] for d in await deliveries_of(hooks, endpoint["id"])] == ["cancelled"]
    redelivered = await hooks.post(f"/v1/webhook-deliveries/{cancelled['id']}/redeliver", headers=mine)
    assert redelivered.status_code == 202, redelivered.text
    await new_task(hooks_app, hooks, processor["id"])
    await work(hooks_app)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["processor_task.created"] * 3
    assert {d["status"] for d in await deliveries_of(hooks, endpoint["id"])} == {"delivered"}

    # Disabled by its owner: its reason says so, and it is audited.
    disabled = await hooks.patch(path, json={"enabled": False}, headers=mine)
    assert disabled.status_code == 200 and disabled.json()["disabled_reason"] == "disabled by its owner"
    assert disabled.json()["disabled_at"] is not None
    assert ("processor", processor["id"]) in await audited(hooks, "webhook_endpoint.disabled", endpoint["id"])
    await new_task(hooks_app, hooks, processor["id"])
    await work(hooks_app)
    assert len(receiver.received) == 3


async def test_an_endpoint_enabled_again_is_vetted_again(client, hooks):
    """The default service refuses private addresses: an endpoint registered where they were allowed (a
    development setup) cannot come back at its loopback URL."""
    processor = await make_processor(hooks, webhook_url="http://127.0.0.1:9/hook")
    [endpoint] = (await hooks.get("/v1/webhook-endpoints", headers=as_processor(processor["id"]))).json()["items"]
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert (await hooks.patch(path, json={"enabled": False}, headers=ADMIN)).json()["disabled_reason"] == (
        "disabled by an administrator")
    refused = await client.patch(path, json={"enabled": True}, headers=as_processor(processor["id"]))
    assert assert_problem(refused, 422)["errors"][0]["loc"] == ["body", "enabled"]
    assert (await client.get(path, headers=ADMIN)).json()["disabled_at"] is not None


async def test_a_processor_creates_its_own_endpoint_when_it_has_none(hooks, hooks_app, receiver):
    processor = await make_processor(hooks)
    mine = as_processor(processor["id"])
    body = {"url": receiver.url, "event_types": ["processor_task.created"]}
    outside = await hooks.post("/v1/webhook-endpoints", headers=mine,
                               json={**body, "event_types": ["processor_task.created", "consent.granted"]})
    assert assert_problem(outside, 422)["errors"][0]["loc"] == ["body", "event_types"]

    created = await hooks.post("/v1/webhook-endpoints", json=body, headers=mine)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["processor_id"] == processor["id"] and endpoint["event_types"] == ["processor_task.created"]
    assert created.headers["location"].endswith(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert await audited(hooks, "webhook_endpoint.created", endpoint["id"]) == [("processor", processor["id"])]
    shown = (await hooks.get(f"/v1/processors/{processor['id']}", headers=ADMIN)).json()
    assert shown["webhook_url"] == receiver.url

    # One active endpoint at most: a second is a 409, and so is enabling an old one beside it.
    again = assert_problem(await hooks.post("/v1/webhook-endpoints", json=body, headers=mine), 409)
    assert endpoint["id"] in again["detail"]
    assert (await hooks.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False},
                              headers=mine)).status_code == 200
    replacement = await hooks.post("/v1/webhook-endpoints", json=body, headers=mine)
    assert replacement.status_code == 201, replacement.text
    assert_problem(await hooks.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True},
                                     headers=mine), 409)

    # Its tasks reach the new endpoint, signed with the secret it was shown; another processor cannot touch it.
    await new_task(hooks_app, hooks, processor["id"])
    await work(hooks_app)
    [(headers, body_sent)] = receiver.received
    assert Webhook(replacement.json()["secret"]).verify(body_sent, headers)["data"]["processor_id"] == processor["id"]
    other = as_processor((await make_processor(hooks))["id"])
    assert_problem(await hooks.patch(f"/v1/webhook-endpoints/{replacement.json()['id']}",
                                     json={"description": "mine now"}, headers=other), 404)
    assert (await hooks.delete(f"/v1/webhook-endpoints/{replacement.json()['id']}", headers=ADMIN)).status_code == 204


def test_retries_stretch_over_about_a_day_then_stop():
    total = sum((delivery.next_delay(n, None) or timedelta(0)).total_seconds() for n in range(1, 8))
    assert 20 * 3600 < total < 34 * 3600
    assert delivery.next_delay(8, None) is None
    assert delivery.next_delay(1, timedelta(hours=1)) >= timedelta(hours=1)
    assert delivery.next_delay(1, timedelta(days=30)) <= timedelta(hours=24, seconds=10)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.1.1/hook",
    "http://172.16.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook", "http://100.64.0.1/hook", "ftp://93.184.216.34/x",
    "http://user:pw@93.184.216.34/hook", "http://no-such-host.invalid/hook",
])
async def test_webhooks_never_go_to_private_addresses(client, url):
    response = await client.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["consent.granted"]},
                                 headers=ADMIN)
    assert assert_problem(response, 422)["errors"][0]["loc"] == ["body", "url"]


async def test_public_addresses_and_https_rules():
    target = await resolve("https://93.184.216.34:8443/hooks?x=1", require_https=True, allow_private=False)
    assert target.connect_url == "https://93.184.216.34:8443/hooks?x=1" and target.host_header == "93.184.216.34:8443"
    with pytest.raises(UnsafeURL, match="https"):
        await resolve("http://93.184.216.34/hooks", require_https=True, allow_private=False)


async def test_the_address_is_checked_again_at_delivery(hooks, hooks_app, receiver, subscribe, client, app):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    await consent(hooks, (await make_subject(hooks))["id"])
    strict = app.state.settings  # the default service: private addresses refused
    async with delivery.http_client(strict) as http:
        while await delivery.run_once(hooks_app.state.sessionmaker, strict, http):
            if (await deliveries_of(hooks, endpoint["id"]))[0]["status"] != "sending":
                break
    assert receiver.received == []
    [refused] = await deliveries_of(hooks, endpoint["id"])
    detail = (await hooks.get(f"/v1/webhook-deliveries/{refused['id']}", headers=ADMIN)).json()
    assert detail["history"][0]["error"].startswith("refused")


async def test_webhook_administration_needs_admin(client):
    for method, path in (("get", "/v1/webhook-endpoints"), ("get", "/v1/webhook-deliveries"),
                         ("post", "/v1/webhook-endpoints")):
        response = await client.request(method, path, headers=staff("consents:read"),
                                        json={"url": "https://93.184.216.34/", "event_types": ["consent.granted"]})
        assert_problem(response, 403)
    assert_problem(await client.get(f"/v1/webhook-endpoints/{uuid.uuid4()}", headers=ADMIN), 404)
    assert_problem(await client.post("/v1/webhook-endpoints", json={"url": "https://93.184.216.34/",
                                                                    "event_types": ["nope"]}, headers=ADMIN), 422)
    created = await client.post("/v1/webhook-endpoints", json={"url": "https://93.184.216.34/",
                                                               "event_types": ["consent.granted"]}, headers=ADMIN)
    assert created.status_code == 201
    listed = (await client.get("/v1/webhook-endpoints", params={"limit": 500}, headers=ADMIN)).json()["items"]
    mine = next(e for e in listed if e["id"] == created.json()["id"])
    assert "secret" not in mine
    assert (await client.delete(f"/v1/webhook-endpoints/{mine['id']}", headers=ADMIN)).status_code == 204


async def test_the_worker_command_delivers(hooks, receiver, subscribe, database_url, tmp_path):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    await consent(hooks, (await make_subject(hooks))["id"])
    env = {**os.environ, "PRIVACY_DATABASE_URL": database_url, "PRIVACY_RECEIPT_KEY_FILE": str(tmp_path / "r.pem"),
           "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", "--once", env=env,
                                                   stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    assert len(receiver.received) == 1
    assert (await deliveries_of(hooks, endpoint["id"]))[0]["status"] == "delivered"


async def test_deliveries_are_listed_by_status(hooks, hooks_app, receiver, subscribe, db):
    endpoint = await subscribe(receiver.url, ["consent.granted"])
    await consent(hooks, (await make_subject(hooks))["id"])
    await work(hooks_app)
    delivered = await hooks.get("/v1/webhook-deliveries", params={"status": "delivered", "endpoint_id": endpoint["id"]},
                                headers=ADMIN)
    assert len(delivered.json()["items"]) == 1
    async with db() as session:
        rows = (await session.execute(select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == uuid.UUID(endpoint["id"])))).scalars().all()
    assert [r.status for r in rows] == ["delivered"]


async def test_two_workers_share_the_outbox_without_double_sends(hooks, hooks_app, receiver, subscribe):
    await subscribe(receiver.url, ["consent.granted"])
    subject = await make_subject(hooks)
    for _ in range(12):
        await consent(hooks, subject["id"])
    settings, sessions = hooks_app.state.settings, hooks_app.state.sessionmaker

    async def worker() -> None:
        async with delivery.http_client(settings) as http:
            while await delivery.run_once(sessions, settings, http):
                pass

    await asyncio.gather(worker(), worker())
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == 12 and len(set(ids)) == 12
