"""Consent: capture and withdrawal with evidence, the current state, receipts, GPC, concurrency."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta

from jose import jwt
from sqlalchemy import select

from app.core.crypto import Keys
from app.subjects.models import Subject
from app.webhooks.models import OutboxEvent
from tests.support import app_settings, as_subject, assert_problem, make_subject, staff

WRITER = staff("consents:write", "consents:read")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def give(client, subject_id: str, headers=WRITER, **fields):
    body = {"purpose": "newsletter", "status": "granted", "channel": "web", **fields}
    return await client.post(f"/v1/subjects/{subject_id}/consents", json=body, headers=headers)


async def state_of(client, subject_id: str) -> dict[str, dict]:
    response = await client.get(f"/v1/subjects/{subject_id}/consents", headers=WRITER)
    assert response.status_code == 200
    return {item["purpose"]: item for item in response.json()["items"]}


async def history_of(client, subject_id: str) -> list[dict]:
    response = await client.get(f"/v1/subjects/{subject_id}/consents/history", params={"limit": 500}, headers=WRITER)
    return response.json()["items"]


async def test_consent_event_keeps_its_evidence(client):
    subject = await make_subject(client)
    evidence = {"ip": "192.0.2.10", "user_agent": "Mozilla/5.0", "text_shown": "Ja tack, skicka nyhetsbrevet."}
    response = await give(client, subject["id"], evidence=evidence)
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == {"id", "subject_id", "purpose", "status", "channel", "method", "policy_version",
                          "occurred_at", "recorded_at", "receipt"}
    assert event["status"] == "granted" and event["method"] == "explicit" and event["subject_id"] == subject["id"]
    current = (await client.get("/v1/policies/current")).json()["version"]
    assert event["policy_version"] == current
    [item] = await history_of(client, subject["id"])
    assert item["evidence"] == {**evidence, "visitor_id": None}
    assert item["recorded_by"] == "tester" and item["id"] == event["id"]


async def test_receipt_verifies_with_the_published_jwks(client):
    subject = await make_subject(client)
    event = (await give(client, subject["id"])).json()
    jwks = (await client.get("/v1/consent-receipts/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # nothing secret is published
    claims = jwt.decode(event["receipt"], jwks, algorithms=["ES256"], options={"verify_aud": False})
    assert jwt.get_unverified_header(event["receipt"])["kid"] == jwks["keys"][0]["kid"]
    assert claims["consentReceiptID"] == claims["jti"] == event["id"]
    assert claims["piiPrincipalId"] == subject["id"] and claims["jurisdiction"] == "SE"
    assert claims["piiControllers"][0]["piiController"] == "WeSafe IT"
    assert claims["policyVersion"] == event["policy_version"] and claims["policyUrl"].endswith(event["policy_version"])
    purpose = claims["services"][0]["purposes"][0]
    assert purpose["purposeCode"] == "newsletter" and purpose["legalBasis"] == "consent"
    assert purpose["consentType"] == "EXPLICIT" and claims["consentStatus"] == "granted"
    assert claims["collectionMethod"].startswith("web")
    tampered = event["receipt"][:-4] + ("AAAA" if not event["receipt"].endswith("AAAA") else "BBBB")
    try:
        jwt.decode(tampered, jwks, algorithms=["ES256"], options={"verify_aud": False})
        raise AssertionError("a tampered receipt verified")
    except jwt.JWTError:
        pass


def test_the_receipt_key_is_kept_across_restarts(tmp_path):
    settings = app_settings(receipt_key_file=tmp_path / "receipt.pem")
    first, second = Keys(settings), Keys(settings)
    assert first.receipts.kid == second.receipts.kid
    assert stat.S_IMODE(os.stat(tmp_path / "receipt.pem").st_mode) == 0o600


async def test_only_consent_purposes_take_consent(client):
    subject = await make_subject(client)
    for purpose in ("service", "billing", "customer_support", "no_such_purpose"):
        body = assert_problem(await give(client, subject["id"], purpose=purpose), 422)
        assert body["errors"][0]["loc"] == ["body", "purpose"]
    assert_problem(await client.delete(f"/v1/subjects/{subject['id']}/consents/billing", headers=WRITER), 422)
    assert_problem(await client.delete(f"/v1/subjects/{subject['id']}/consents/nope", headers=WRITER), 404)


async def test_policy_version_and_time_are_checked(client):
    subject = await make_subject(client)
    assert_problem(await give(client, subject["id"], policy_version="1999-01"), 422)
    future = iso(datetime.now(UTC) + timedelta(hours=1))
    assert_problem(await give(client, subject["id"], occurred_at=future), 422)
    explicit = await give(client, subject["id"], policy_version="2026-11")
    assert explicit.json()["policy_version"] == "2026-11"


async def test_latest_occurred_at_wins_whatever_the_arrival_order(client):
    subject = await make_subject(client)
    now = datetime.now(UTC)
    newer = await give(client, subject["id"], status="granted", occurred_at=iso(now - timedelta(minutes=1)))
    older = await give(client, subject["id"], status="withdrawn", occurred_at=iso(now - timedelta(days=1)))
    assert newer.status_code == older.status_code == 201
    state = (await state_of(client, subject["id"]))["newsletter"]
    assert state["status"] == "granted" and state["occurred_at"] == newer.json()["occurred_at"]
    history = await history_of(client, subject["id"])
    assert [e["id"] for e in history] == [newer.json()["id"], older.json()["id"]]  # newest first


async def test_withdrawal_is_one_call(client):
    subject = await make_subject(client)
    await give(client, subject["id"], purpose="marketing", channel="crm")
    response = await client.delete(f"/v1/subjects/{subject['id']}/consents/marketing", headers=as_subject(subject["id"]))
    assert response.status_code == 200
    event = response.json()
    assert event["status"] == "withdrawn" and event["channel"] == "web" and event["receipt"]
    assert (await state_of(client, subject["id"]))["marketing"]["status"] == "withdrawn"
    by_staff = await client.delete(f"/v1/subjects/{subject['id']}/consents/marketing", headers=WRITER,
                                   params={"channel": "phone"})
    assert by_staff.json()["channel"] == "phone"


async def test_staff_say_which_channel_a_withdrawal_came_through(client):
    """The CRM records a withdrawal taken on the phone as `phone`, not as `api`; the history keeps the channel."""
    subject = await make_subject(client)
    url = f"/v1/subjects/{subject['id']}/consents/marketing"
    for channel in ("crm", "phone", None):
        await give(client, subject["id"], purpose="marketing", channel="web")
        withdrawn = await client.delete(url, headers=WRITER, params={"channel": channel} if channel else {})
        assert withdrawn.status_code == 200 and withdrawn.json()["channel"] == (channel or "api")
    history = await history_of(client, subject["id"])
    assert [(e["status"], e["channel"]) for e in history if e["status"] == "withdrawn"] == [
        ("withdrawn", "api"), ("withdrawn", "phone"), ("withdrawn", "crm")]
    assert_problem(await client.delete(url, headers=WRITER, params={"channel": "fax"}), 422)


async def test_subjects_manage_their_own_consents_only(client):
    me, other = await make_subject(client), await make_subject(client)
    mine = await give(client, me["id"], headers=as_subject(me["id"]))
    assert mine.status_code == 201
    assert_problem(await give(client, other["id"], headers=as_subject(me["id"])), 404)
    assert_problem(await client.get(f"/v1/subjects/{other['id']}/consents", headers=as_subject(me["id"])), 404)
    assert_problem(await client.delete(f"/v1/subjects/{other['id']}/consents/newsletter",
                                       headers=as_subject(me["id"])), 404)
    assert_problem(await give(client, me["id"], headers=staff("consents:read")), 403)
    assert_problem(await client.get(f"/v1/subjects/{me['id']}/consents", headers=staff("subjects:read")), 403)


async def test_global_privacy_control_turns_a_web_grant_into_a_withdrawal(client):
    subject = await make_subject(client)
    gpc = {"Sec-GPC": "1"}
    marketing = await client.post(f"/v1/subjects/{subject['id']}/consents", headers=WRITER | gpc,
                                  json={"purpose": "marketing", "status": "granted", "channel": "web"})
    assert marketing.status_code == 201
    assert marketing.json()["status"] == "withdrawn" and marketing.json()["method"] == "gpc"
    assert (await state_of(client, subject["id"]))["marketing"]["status"] == "withdrawn"
    # Not a GPC purpose, not the web, or no signal: recorded as given.
    newsletter = await client.post(f"/v1/subjects/{subject['id']}/consents", headers=WRITER | gpc,
                                   json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    assert newsletter.json()["status"] == "granted"
    by_phone = await client.post(f"/v1/subjects/{subject['id']}/consents", headers=WRITER | gpc,
                                 json={"purpose": "analytics", "status": "granted", "channel": "phone"})
    assert by_phone.json()["status"] == "granted" and by_phone.json()["method"] == "explicit"
    purposes = {p["code"]: p["gpc"] for p in (await client.get("/v1/purposes")).json()["items"]}
    assert purposes["marketing"] and purposes["analytics"] and not purposes["newsletter"]


async def test_concurrent_writes_lose_nothing_and_the_latest_wins(client):
    subject = await make_subject(client)
    base = datetime.now(UTC) - timedelta(hours=1)
    bodies = [{"purpose": "analytics", "status": "granted" if i % 2 else "withdrawn", "channel": "api",
               "occurred_at": iso(base + timedelta(seconds=i))} for i in range(10)]
    responses = await asyncio.gather(*[client.post(f"/v1/subjects/{subject['id']}/consents", json=b, headers=WRITER)
                                       for b in bodies])
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len(await history_of(client, subject["id"])) == 10
    state = (await state_of(client, subject["id"]))["analytics"]
    assert state["status"] == "granted" and state["occurred_at"] == iso(base + timedelta(seconds=9))


async def test_ten_concurrent_identical_requests_create_one_event(client):
    subject = await make_subject(client)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"purpose": "newsletter", "status": "granted", "channel": "web"}
    responses = await asyncio.gather(*[client.post(f"/v1/subjects/{subject['id']}/consents", json=body,
                                                   headers=WRITER | key) for _ in range(10)])
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["id"] for r in responses}) == 1 and len({r.json()["receipt"] for r in responses}) == 1
    assert len(await history_of(client, subject["id"])) == 1


async def test_every_change_is_in_the_outbox_and_the_audit_trail(client, db):
    subject = await make_subject(client)
    event = (await give(client, subject["id"])).json()
    await client.delete(f"/v1/subjects/{subject['id']}/consents/newsletter", headers=WRITER)
    async with db() as session:
        rows = (await session.execute(select(OutboxEvent).where(OutboxEvent.subject_id == uuid.UUID(subject["id"]))
                                      .order_by(OutboxEvent.created_at))).scalars().all()
    assert [r.type for r in rows] == ["consent.granted", "consent.withdrawn"]
    assert rows[0].payload["event_id"] == event["id"] and rows[0].payload["purpose"] == "newsletter"
    audit = (await client.get("/v1/audit-events", params={"subject_id": subject["id"]},
                              headers=staff("audit:read"))).json()["items"]
    assert {"consent.granted", "consent.withdrawn"} <= {e["action"] for e in audit}


async def test_an_erased_subject_takes_no_consent(client, db):
    subject = await make_subject(client)
    async with db() as session:
        (await session.get(Subject, uuid.UUID(subject["id"]))).status = "erased"
        await session.commit()
    assert_problem(await give(client, subject["id"]), 409)


async def test_history_pages(client):
    subject = await make_subject(client)
    for _ in range(3):
        await give(client, subject["id"])
    first = (await client.get(f"/v1/subjects/{subject['id']}/consents/history", params={"limit": 2},
                              headers=WRITER)).json()
    second = (await client.get(f"/v1/subjects/{subject['id']}/consents/history",
                               params={"limit": 2, "cursor": first["next_cursor"]}, headers=WRITER)).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
