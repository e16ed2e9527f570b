"""Retention: the rules, legal holds, the sweep (dry, real, again, interrupted), anonymization, and Art. 30."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, cast, select, update

from app.audit.service import verify_chains
from app.auth.models import LoginAttempt, LoginCode
from app.consent.models import ConsentState
from app.idempotency.models import IdempotencyRecord
from app.models import metadata
from app.retention import rules
from app.retention import service as retention
from app.retention.models import RetentionRun
from app.subjects.models import PersonalDataItem, Subject
from tests.support import (
    ADMIN,
    REQUEST_MANAGER,
    add_item,
    assert_problem,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
READER = staff("subjects:read", "consents:read", "sensitive:read")


def rule(clock: str, period: str | None = None, action: str = "delete") -> dict:
    return {"clock": clock, "period": period, "action": action, "description": {"sv": "x", "en": "x"}}


@pytest.mark.parametrize(("case", "kwargs", "expected"), [
    ("collected 13 months ago, kept 12", dict(rule=rule("after_collection", "P12M"), collected_at=NOW - timedelta(days=400)), "delete"),
    ("collected 11 months ago, kept 12", dict(rule=rule("after_collection", "P12M"), collected_at=NOW - timedelta(days=330)), None),
    ("anonymize on expiry", dict(rule=rule("after_collection", "P13M", "anonymize"), collected_at=NOW - timedelta(days=500)), "anonymize"),
    ("90 days", dict(rule=rule("after_collection", "P90D"), collected_at=NOW - timedelta(days=91)), "delete"),
    ("relationship ongoing", dict(rule=rule("after_relationship_end", "P12M"), collected_at=NOW - timedelta(days=4000)), None),
    ("ended 13 months ago", dict(rule=rule("after_relationship_end", "P12M"), relationship_ended_at=NOW - timedelta(days=400)), "delete"),
    ("ended 6 months ago", dict(rule=rule("after_relationship_end", "P12M"), relationship_ended_at=NOW - timedelta(days=180)), None),
    ("consent granted", dict(rule=rule("until_withdrawn", "P30D"), consent=("granted", NOW - timedelta(days=900))), None),
    ("withdrawn 31 days ago", dict(rule=rule("until_withdrawn", "P30D"), consent=("withdrawn", NOW - timedelta(days=31))), "delete"),
    ("withdrawn yesterday", dict(rule=rule("until_withdrawn", "P30D"), consent=("withdrawn", NOW - timedelta(days=1))), None),
    ("never consented", dict(rule=rule("until_withdrawn", "P30D"), collected_at=NOW - timedelta(days=40)), "delete"),
    ("booked 2018: kept to end of 2025", dict(rule=rule("bookkeeping"), collected_at=datetime(2018, 6, 1, tzinfo=UTC)), "delete"),
    ("booked 2019: kept to end of 2026", dict(rule=rule("bookkeeping"), collected_at=datetime(2019, 1, 1, tzinfo=UTC)), None),
    ("kept at erasure, expired", dict(rule=rule("bookkeeping"), retained_until=NOW - timedelta(seconds=1)), "delete"),
    ("kept at erasure, not yet", dict(rule=rule("bookkeeping"), retained_until=NOW + timedelta(days=1)), None),
])
def test_every_clock_and_action(case, kwargs, expected):
    arguments = {"collected_at": NOW, "relationship_ended_at": None, "consent": None, "retained_until": None,
                 "now": NOW} | kwargs
    verdict = rules.judge(**arguments)
    assert verdict.action == expected, case
    assert (verdict.reason == "") == (expected is not None)


def test_bookkeeping_ends_with_the_seventh_year():
    verdict = rules.judge(rule=rule("bookkeeping"), collected_at=datetime(2026, 3, 1, tzinfo=UTC),
                          relationship_ended_at=None, consent=None, retained_until=None, now=NOW)
    assert verdict.expires_at == datetime(2033, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_periods_and_category_rules():
    assert rules.add_period(datetime(2026, 1, 31, tzinfo=UTC), "P1M") == datetime(2026, 2, 28, tzinfo=UTC)
    assert rules.add_period(datetime(2026, 1, 1, tzinfo=UTC), "P1Y2M3D") == datetime(2027, 3, 4, tzinfo=UTC)

    class Purpose:
        retention = rule("after_collection", "P13M", "anonymize")
        retention_by_category = {"ip_address": rule("after_collection", "P90D")}

    assert rules.rule_for(Purpose, "ip_address")["period"] == "P90D"
    assert rules.rule_for(Purpose, "username")["period"] == "P13M"


async def test_the_catalog_shows_its_retention_rules(client):
    purposes = {p["code"]: p for p in (await client.get("/v1/purposes")).json()["items"]}
    assert purposes["service"]["retention"] | {"description": None} == {
        "clock": "after_relationship_end", "period": "P12M", "action": "delete", "description": None}
    assert purposes["customer_support"]["retention"]["period"] == "P24M"
    assert purposes["analytics"]["retention"]["period"] == "P13M"
    assert purposes["analytics"]["retention"]["action"] == "anonymize"
    assert purposes["analytics"]["retention_by_category"]["ip_address"]["period"] == "P90D"
    assert purposes["billing"]["retention"]["clock"] == "bookkeeping"
    assert purposes["billing"]["retention_by_category"] == {}
    assert purposes["newsletter"]["subject_categories"] == ["newsletter_subscribers", "course_participants"]


async def test_admins_edit_category_rules(client):
    code = f"courses_{uuid.uuid4().hex[:6]}"
    body = {"code": code, "name": {"sv": "Kurser", "en": "Courses"}, "description": {"sv": "K", "en": "C"},
            "legal_basis": "contract", "categories": ["name", "photo"],
            "retention": {"clock": "after_collection", "period": "P24M", "action": "delete",
                          "description": {"sv": "24 mån", "en": "24 months"}}}
    assert (await client.post("/v1/purposes", json=body, headers=ADMIN)).status_code == 201
    photos = {"clock": "after_collection", "period": "P6M", "action": "delete",
              "description": {"sv": "Foton 6 mån", "en": "Photos 6 months"}}
    patched = await client.patch(f"/v1/purposes/{code}", json={"retention_by_category": {"photo": photos},
                                                                "subject_categories": ["course_participants"]},
                                 headers=ADMIN)
    assert patched.json()["retention_by_category"]["photo"]["period"] == "P6M"
    assert_problem(await client.patch(f"/v1/purposes/{code}", json={"retention_by_category": {"shoe": photos}},
                                      headers=ADMIN), 422)


# --- the sweep -------------------------------------------------------------------------------------------------


async def age(db, subject_id: str, *, relationship_ended_days: int | None = None,
              items: dict[str, int] | None = None) -> None:
    """Move a subject's clocks back: the relationship ended N days ago; items (by id) collected N days ago."""
    async with db() as session:
        if relationship_ended_days is not None:
            await session.execute(update(Subject).where(Subject.id == uuid.UUID(subject_id)).values(
                relationship_ended_at=datetime.now(UTC) - timedelta(days=relationship_ended_days)))
        for item_id, days in (items or {}).items():
            await session.execute(update(PersonalDataItem).where(PersonalDataItem.id == uuid.UUID(item_id)).values(
                collected_at=datetime.now(UTC) - timedelta(days=days)))
        await session.commit()


async def sweep(client, dry_run: bool = False) -> dict:
    started = await client.post("/v1/retention/runs", json={"dry_run": dry_run}, headers=ADMIN)
    assert started.status_code == 202, started.text
    run = (await client.get(f"/v1/retention/runs/{started.json()['id']}", headers=ADMIN)).json()
    assert run["status"] == "completed", run
    return run


async def categories_left(client, subject_id: str) -> list[tuple[str, str, bool]]:
    items = (await client.get(f"/v1/subjects/{subject_id}/data", params={"limit": 500}, headers=READER)).json()["items"]
    return sorted((i["purpose"], i["category"], i["value"] == "") for i in items)


@pytest.fixture
async def customers(client, db):
    """Aged customers, one per situation the rules meet."""
    ended = await make_subject(client)  # left 13 months ago
    service_phone = await add_item(client, ended["id"], category="phone", value="070-100 00 01", purpose="service")
    old_invoice = await add_item(client, ended["id"], category="address", value="Gata 1", purpose="billing")
    await add_item(client, ended["id"], category="payment", value="4111 1111 1111 1111", purpose="billing")
    username = await add_item(client, ended["id"], category="username", value="nils78", purpose="analytics")
    ip = await add_item(client, ended["id"], category="ip_address", value="198.51.100.7", purpose="analytics")
    await age(db, ended["id"], relationship_ended_days=400, items={
        service_phone["id"]: 900, old_invoice["id"]: 365 * 9, username["id"]: 420, ip["id"]: 100})

    staying = await make_subject(client)  # still a customer
    await add_item(client, staying["id"], category="phone", value="070-100 00 02", purpose="service")
    ticket = await add_item(client, staying["id"], category="user_content", value="Mitt ärende", purpose="customer_support")
    await age(db, staying["id"], items={ticket["id"]: 760})

    unsubscribed = await make_subject(client)  # newsletter consent withdrawn 40 days ago
    address = await add_item(client, unsubscribed["id"], category="email", value="x@example.se", purpose="newsletter")
    await client.post(f"/v1/subjects/{unsubscribed['id']}/consents", headers=staff("consents:write"),
                      json={"purpose": "newsletter", "status": "withdrawn", "channel": "web",
                            "occurred_at": (datetime.now(UTC) - timedelta(days=40)).isoformat()})
    await age(db, unsubscribed["id"], items={address["id"]: 400})

    subscribed = await make_subject(client)  # consent still granted
    kept_address = await add_item(client, subscribed["id"], category="email", value="y@example.se", purpose="newsletter")
    await client.post(f"/v1/subjects/{subscribed['id']}/consents", headers=staff("consents:write"),
                      json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    await age(db, subscribed["id"], items={kept_address["id"]: 400})
    return {"ended": ended, "staying": staying, "unsubscribed": unsubscribed, "subscribed": subscribed}


async def test_a_dry_run_changes_nothing_and_reports_what_a_real_run_does(client, customers):
    before = {name: await categories_left(client, s["id"]) for name, s in customers.items()}
    dry = await sweep(client, dry_run=True)
    assert {name: await categories_left(client, s["id"]) for name, s in customers.items()} == before
    real = await sweep(client)
    assert dry["report"] == real["report"]
    actions = {(a["purpose"], a["category"], a["action"]) for a in real["report"]["actions"]}
    assert {("service", "phone", "delete"), ("billing", "address", "delete"), ("analytics", "username", "anonymize"),
            ("analytics", "ip_address", "delete"), ("customer_support", "user_content", "delete"),
            ("newsletter", "email", "delete")} <= actions
    kept = {(k["purpose"], k["category"], k["rule"], k["reason"]) for k in real["report"]["kept"]}
    assert ("billing", "payment", "bookkeeping delete", "not yet expired") in kept
    assert ("service", "phone", "after_relationship_end P12M delete", "customer relationship ongoing") in kept
    assert ("newsletter", "email", "until_withdrawn P30D delete", "consent granted") in kept


async def test_each_rule_does_what_it_says(client, customers, db):
    await sweep(client)
    assert await categories_left(client, customers["ended"]["id"]) == [
        ("analytics", "username", True), ("billing", "payment", False)]
    assert await categories_left(client, customers["staying"]["id"]) == [("service", "phone", False)]
    assert await categories_left(client, customers["unsubscribed"]["id"]) == []
    assert await categories_left(client, customers["subscribed"]["id"]) == [("newsletter", "email", False)]
    # The unsubscribed customer's relationship never ended: nothing left, but still a customer, not anonymized.
    assert (await client.get(f"/v1/subjects/{customers['unsubscribed']['id']}", headers=READER)).json()["email"]
    # Every action is in the audit trail (without values), and the chains still verify.
    audit = (await client.get("/v1/audit-events", params={"subject_id": customers["ended"]["id"]},
                              headers=staff("audit:read"))).json()["items"]
    assert {("retention.items_deleted", "3 items"), ("retention.items_anonymized", "1 item")} <= {
        (e["action"], e["target"]) for e in audit}
    async with db() as session:
        _, broken = await verify_chains(session)
    assert broken is None


async def test_running_again_changes_nothing_more(client, customers, db):
    await sweep(client)
    async with db() as session:
        snapshot = sorted((str(i.id), i.value, i.anonymized_at) for i in (await session.execute(
            select(PersonalDataItem).where(PersonalDataItem.subject_id.in_(
                [uuid.UUID(s["id"]) for s in customers.values()])))).scalars())
    again = await sweep(client)
    async with db() as session:
        after = sorted((str(i.id), i.value, i.anonymized_at) for i in (await session.execute(
            select(PersonalDataItem).where(PersonalDataItem.subject_id.in_(
                [uuid.UUID(s["id"]) for s in customers.values()])))).scalars())
    assert after == snapshot
    assert not any(a["action"] == "delete" and a["category"] == "phone" and a["purpose"] == "service"
                   for a in again["report"]["actions"])


async def test_a_held_subject_is_left_alone_and_cannot_be_erased(client, customers):
    ended = customers["ended"]
    hold = await client.post(f"/v1/subjects/{ended['id']}/legal-holds", headers=ADMIN,
                             json={"reason": "Tvist om faktura 2026-114."})
    assert hold.status_code == 201 and hold.json()["active"] is True
    before = await categories_left(client, ended["id"])
    run = await sweep(client)
    assert await categories_left(client, ended["id"]) == before
    assert any(k["reason"] == "legal hold" for k in run["report"]["kept"])

    request = (await client.post("/v1/rights-requests", json={"type": "erasure", "subject_id": ended["id"]},
                                 headers=REQUEST_MANAGER)).json()
    for action in ("verify", "start"):
        await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": action},
                          headers=REQUEST_MANAGER)
    refused = await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": "complete"},
                                headers=REQUEST_MANAGER)
    body = assert_problem(refused, 409)
    assert "legal hold" in body["detail"] and "Tvist om faktura" in body["detail"]

    listed = (await client.get("/v1/legal-holds", params={"subject_id": ended["id"], "active": "true"},
                               headers=ADMIN)).json()["items"]
    assert [h["id"] for h in listed] == [hold.json()["id"]]
    lifted = await client.post(f"/v1/legal-holds/{hold.json()['id']}/lift", json={"reason": "Tvisten är löst."},
                               headers=ADMIN)
    assert lifted.json()["active"] is False and lifted.json()["lift_reason"] == "Tvisten är löst."
    assert_problem(await client.post(f"/v1/legal-holds/{hold.json()['id']}/lift", headers=ADMIN), 409)
    completed = await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": "complete"},
                                  headers=REQUEST_MANAGER)
    assert completed.status_code == 200
    audit = (await client.get("/v1/audit-events", params={"subject_id": ended["id"], "limit": 500},
                              headers=staff("audit:read"))).json()["items"]
    assert {"legal_hold.placed", "legal_hold.lifted"} <= {e["action"] for e in audit}
    assert_problem(await client.post(f"/v1/subjects/{ended['id']}/legal-holds", json={"reason": "x"},
                                     headers=staff("requests:manage")), 403)
    assert_problem(await client.post(f"/v1/subjects/{ended['id']}/legal-holds", headers=ADMIN,
                                     json={"reason": "x", "ends_at": "2001-01-01T00:00:00Z"}), 422)


async def test_a_hold_ends_by_itself(client, customers, db):
    from app.holds.models import LegalHold

    subject = customers["ended"]
    hold = (await client.post(f"/v1/subjects/{subject['id']}/legal-holds", headers=ADMIN, json={
        "reason": "Preskription", "ends_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()})).json()
    async with db() as session:
        await session.execute(update(LegalHold).where(LegalHold.id == uuid.UUID(hold["id"])).values(
            ends_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    await sweep(client)
    assert ("service", "phone", False) not in await categories_left(client, subject["id"])


async def test_an_interrupted_run_leaves_no_harm_and_the_next_finishes(client, customers, app, monkeypatch):
    original, calls = retention._batch, {"n": 0}

    async def dies_on_the_third_batch(session, run, batch_size):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return await original(session, run, batch_size)

    monkeypatch.setattr(retention, "_batch", dies_on_the_third_batch)
    async with app.state.sessionmaker() as session:
        run = await retention.start(session, dry_run=False, actor=retention.SWEEPER)
        await session.commit()
    with pytest.raises(RuntimeError):
        await retention.execute(app.state.sessionmaker, run.id, batch_size=2)
    monkeypatch.undo()
    async with app.state.sessionmaker() as session:
        failed = await session.get(RetentionRun, run.id)
    assert failed.status == "failed" and failed.subjects_scanned == 4 and failed.cursor is not None

    finished = await sweep(client)
    assert finished["status"] == "completed"
    assert await categories_left(client, customers["ended"]["id"]) == [
        ("analytics", "username", True), ("billing", "payment", False)]
    assert await categories_left(client, customers["unsubscribed"]["id"]) == []


async def test_one_real_run_at_a_time(client, app):
    async with app.state.sessionmaker() as session:
        run = await retention.start(session, dry_run=False, actor=retention.SWEEPER)
        await session.commit()
    try:
        assert_problem(await client.post("/v1/retention/runs", json={"dry_run": False}, headers=ADMIN), 409)
        assert (await client.post("/v1/retention/runs", json={"dry_run": True}, headers=ADMIN)).status_code == 202
    finally:
        await retention.execute(app.state.sessionmaker, run.id)
    assert_problem(await client.post("/v1/retention/runs", json={}, headers=staff("requests:manage")), 403)
    assert_problem(await client.get(f"/v1/retention/runs/{uuid.uuid4()}", headers=ADMIN), 404)


async def test_anonymization_leaves_nothing_that_leads_to_the_person(client, db):
    tag = uuid.uuid4().hex[:8]
    phone = f"070-{int(tag, 16) % 10**7:07d}"
    subject = await make_subject(client, name=f"Olle Ek {tag}", external_ref=f"crm-{tag}")
    sid = subject["id"]
    items = [await add_item(client, sid, category="phone", value=phone, purpose="service"),
             await add_item(client, sid, category="address", value=f"Ekvägen {tag}", purpose="service"),
             await add_item(client, sid, category="username", value=f"olle{tag}", purpose="analytics")]
    await client.post(f"/v1/subjects/{sid}/consents", headers=staff("consents:write"), json={
        "purpose": "analytics", "status": "granted", "channel": "web",
        "evidence": {"ip": "198.51.100.99", "user_agent": f"Safari {tag}", "text_shown": f"OK {tag}"}})
    await client.post("/v1/rights-requests", headers=REQUEST_MANAGER,
                      json={"type": "access", "subject_id": sid, "details": f"Skicka till {subject['email']}"})
    await client.put(f"/v1/subjects/{sid}/marketing", json={"channels": {"email": "opted_out"}},
                     headers=staff("consents:write"))
    await client.post("/v1/auth/subject-login", json={"email": subject["email"]})
    await age(db, sid, relationship_ended_days=800, items={i["id"]: 800 for i in items})
    await client.delete(f"/v1/subjects/{sid}/consents/analytics", headers=staff("consents:write"))
    async with db() as session:
        await session.execute(update(ConsentState).where(ConsentState.subject_id == uuid.UUID(sid)).values(
            occurred_at=datetime.now(UTC) - timedelta(days=800)))
        await session.commit()

    await sweep(client)
    person = (await client.get(f"/v1/subjects/{sid}", headers=READER)).json()
    assert person["status"] == "erased" and person["email"] is None and person["name"] is None
    assert await categories_left(client, sid) == [("analytics", "username", True)]  # a count, not a person

    wanted = [subject["email"], subject["email"].upper(), tag, phone, "198.51.100.99"]
    async with db() as session:
        for table in metadata.sorted_tables:
            for column in table.c:
                try:
                    textual = column.type.python_type in (str, dict, list)
                except NotImplementedError:
                    textual = False
                if not textual:
                    continue
                for value in wanted:
                    found = await session.execute(select(table).where(cast(column, String).contains(value)).limit(1))
                    assert found.first() is None, f"{value!r} is still in {table.name}.{column.name}"
    # What the sweep may keep: the opt-out, as a keyed hash with no link back; consent counts by purpose and month.
    checked = await client.post("/v1/marketing/check", headers=staff("consents:read"),
                                json={"contacts": [{"email": subject["email"], "channel": "email"}]})
    assert checked.json()["results"][0]["reason"] == "opted_out"
    history = (await client.get(f"/v1/subjects/{sid}/consents/history", headers=READER)).json()["items"]
    assert [e["status"] for e in history] == ["withdrawn", "granted"]


async def test_the_cli_runs_the_sweep(database_url, tmp_path):
    env = {**os.environ, "PRIVACY_DATABASE_URL": database_url, "PRIVACY_RECEIPT_KEY_FILE": str(tmp_path / "r.pem")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "retention", "run", "--dry-run",
                                                   env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["status"] == "completed" and result["dry_run"] is True and "peak memory" in err.decode()


# --- the record of processing ----------------------------------------------------------------------------------


async def test_the_record_of_processing_comes_from_the_live_registry(client):
    american = await make_processor(client, country="US")
    subject = await make_subject(client)
    await report_disclosure(client, american["id"], subject["id"], ["email"], "newsletter")
    record = await client.get("/v1/records-of-processing", headers=ADMIN)
    assert record.status_code == 200
    body = record.json()
    assert body["controller"]["name"] == "WeSafe IT" and body["data_protection_contact"] == "dataskydd@wesafe.se"
    activities = {a["purpose"]: a for a in body["activities"]}
    newsletter = activities["newsletter"]
    assert newsletter["legal_basis"] == "consent" and "email" in newsletter["data_categories"]
    assert "newsletter_subscribers" in newsletter["subject_categories"]
    assert american["id"] in {r["id"] for r in newsletter["recipients"]}
    # Each transfer with its safeguard (issue 16): this one has none recorded.
    assert f"{american['name']} (US): No safeguard recorded: disclosures to it are flagged" in newsletter[
        "third_country_transfers"]
    assert activities["billing"]["retention"]["clock"] == "bookkeeping"
    assert any("AES-256-GCM" in m for m in body["security_measures"])
    assert any("hash-chained" in m for m in body["security_measures"])
    assert american["id"] in {p["id"] for p in body["processors"]}

    as_csv = await client.get("/v1/records-of-processing.csv", headers=ADMIN)
    assert as_csv.headers["content-type"].startswith("text/csv")
    # ?format=csv, from before CSV had its own operation, still answers the same.
    assert (await client.get("/v1/records-of-processing", params={"format": "csv"}, headers=ADMIN)).text == as_csv.text
    rows = {r["purpose"]: r for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert rows["newsletter"]["legal_basis"] == "consent" and "(US" in rows["newsletter"]["recipients"]
    assert rows["billing"]["controller"] == "WeSafe IT"
    assert_problem(await client.get("/v1/records-of-processing", headers=staff("audit:read")), 403)
    assert_problem(await client.get("/v1/records-of-processing.csv", headers=staff("audit:read")), 403)


async def test_a_run_purges_expired_keys_and_login_records_and_a_dry_run_only_counts(client, db):
    now = datetime.now(UTC)
    subject = await make_subject(client)
    expired_key, live_key = (f"purge-{uuid.uuid4().hex}" for _ in range(2))
    ip_hash = f"purge-{uuid.uuid4().hex}"  # this test's rows only, whatever earlier runs left in the database
    async with db() as session:
        session.add_all([
            IdempotencyRecord(caller="staff:purge", key=expired_key, fingerprint="f", created_at=now - timedelta(hours=25)),
            IdempotencyRecord(caller="staff:purge", key=live_key, fingerprint="f", created_at=now - timedelta(hours=23)),
            LoginAttempt(kind="request", email_hash="old", ip_hash=ip_hash, at=now - timedelta(minutes=16)),
            LoginAttempt(kind="request", email_hash="new", ip_hash=ip_hash, at=now - timedelta(minutes=1)),
            LoginCode(email_hash="old", subject_id=uuid.UUID(subject["id"]), code_hash="c", expires_at=now - timedelta(seconds=1)),
            LoginCode(email_hash="new", subject_id=uuid.UUID(subject["id"]), code_hash="c", expires_at=now + timedelta(minutes=9)),
        ])
        await session.commit()

    async def left() -> tuple[list[str], list[str], list[str]]:
        async with db() as session:
            keys = (await session.execute(select(IdempotencyRecord.key).where(
                IdempotencyRecord.key.in_([expired_key, live_key])).order_by(IdempotencyRecord.created_at))).scalars().all()
            attempts = (await session.execute(select(LoginAttempt.email_hash).where(
                LoginAttempt.ip_hash == ip_hash).order_by(LoginAttempt.at))).scalars().all()
            codes = (await session.execute(select(LoginCode.email_hash).where(
                LoginCode.subject_id == uuid.UUID(subject["id"])).order_by(LoginCode.expires_at))).scalars().all()
        return list(keys), list(attempts), list(codes)

    dry = await sweep(client, dry_run=True)
    assert all(dry["report"]["purged"][kind] >= 1 for kind in ("idempotency_keys", "login_attempts", "login_codes"))
    assert await left() == ([expired_key, live_key], ["old", "new"], ["old", "new"])
    real = await sweep(client)
    assert real["report"]["purged"] == dry["report"]["purged"]
    assert await left() == ([live_key], ["new"], ["new"])
