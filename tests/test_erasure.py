"""The right to be forgotten, the whole story: what goes, what stays and why, who is told, and all or nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import String, cast, or_, select

from app.audit.models import AuditEvent
from app.consent.models import ConsentEvent
from app.disclosures import service as disclosures_service
from app.models import metadata
from app.subjects.models import PersonalDataItem, Subject
from tests.support import (
    REQUEST_MANAGER,
    add_item,
    as_processor,
    as_subject,
    assert_problem,
    complete_request,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

MANAGER = REQUEST_MANAGER
EVERYTHING = staff("subjects:read", "consents:read", "consents:write", "disclosures:read", "sensitive:read",
                   "audit:read", "requests:read")


async def rich_subject(client) -> tuple[dict, list[dict]]:
    """A customer with data for several purposes, consents, a marketing opt-out, and two recipients. Every value
    is unique to the call, so that a search of the whole database finds this subject's and no one else's."""
    tag = uuid.uuid4().hex[:8]
    digits = f"{int(tag, 16) % 10**7:07d}"
    subject = await make_subject(client, name=f"Karin Berg {tag}", external_ref=f"crm-{tag}")
    subject["tag"], subject["phone"], subject["ip"] = tag, f"070-{digits[:3]} {digits[3:]}", f"2001:db8::{int(tag[:4], 16) or 1:x}"  # as the service normalizes it
    sid = subject["id"]
    await add_item(client, sid, category="payment", value="4111 1111 1111 1111", purpose="billing")
    await add_item(client, sid, category="address", value=f"Storgatan {tag}, Stockholm", purpose="billing")
    await add_item(client, sid, category="phone", value=subject["phone"], purpose="service")
    await add_item(client, sid, category="ip_address", value=subject["ip"], source="website", purpose="analytics")
    for purpose in ("newsletter", "marketing"):
        response = await client.post(f"/v1/subjects/{sid}/consents", headers=staff("consents:write"), json={
            "purpose": purpose, "status": "granted", "channel": "web",
            "evidence": {"ip": subject["ip"], "user_agent": f"Firefox {tag}", "text_shown": f"Ja tack {tag}"}})
        assert response.status_code == 201
    recipients = [await make_processor(client), await make_processor(client, country="US")]
    for processor in recipients:
        await report_disclosure(client, processor["id"], sid, ["email", "name"], "newsletter")
    return subject, recipients


async def erase(client, subject_id: str) -> dict:
    return await complete_request(client, subject_id, "erasure")


async def test_the_whole_erasure_story(client, db):
    subject, recipients = await rich_subject(client)
    sid = subject["id"]
    done = await erase(client, sid)
    assert done["status"] == "completed"

    erased = (await client.get(f"/v1/subjects/{sid}", headers=EVERYTHING)).json()
    assert erased["status"] == "erased" and erased["email"] is None and erased["name"] is None
    assert erased["external_ref"] is None
    lookup = await client.get("/v1/subjects", params={"email": subject["email"]}, headers=EVERYTHING)
    assert lookup.json()["items"] == []

    # Only what bookkeeping law keeps is left, each saying until when and why.
    items = (await client.get(f"/v1/subjects/{sid}/data", headers=EVERYTHING)).json()["items"]
    assert sorted(i["category"] for i in items) == ["address", "payment"]
    this_year = int(erased["created_at"][:4])
    for item in items:
        assert item["purpose"] == "billing"
        assert item["retained_until"] == f"{this_year + 7}-12-31T23:59:59Z"
        assert "Bokföringslagen" in item["retention_reason"]

    consents = (await client.get(f"/v1/subjects/{sid}/consents", headers=EVERYTHING)).json()["items"]
    assert {c["purpose"]: c["status"] for c in consents} == {"newsletter": "withdrawn", "marketing": "withdrawn"}
    history = (await client.get(f"/v1/subjects/{sid}/consents/history", headers=EVERYTHING)).json()["items"]
    assert all(
        e["evidence"] == {"ip": None, "user_agent": None, "text_shown": None, "visitor_id": None} for e in history
    )
    assert [e["method"] for e in history[:2]] == ["erasure", "erasure"]

    # The former contacts stay suppressed.
    check = await client.post("/v1/marketing/check", headers=EVERYTHING, json={"contacts": [
        {"email": subject["email"], "channel": "email"}, {"phone": subject["phone"], "channel": "sms"}]})
    assert [r["reason"] for r in check.json()["results"]] == ["opted_out", "opted_out"]

    # Every recipient is told (GDPR Art. 19).
    for processor in recipients:
        tasks = (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"]
        assert [(t["type"], t["subject_id"], t["status"]) for t in tasks] == [("erasure", sid, "open")]

    # Decisions answer no, even for bookkeeping; no new data is taken.
    decision = await client.post("/v1/decisions", json={"subject_id": sid, "purpose": "billing"}, headers=EVERYTHING)
    assert decision.json()["reasons"] == ["subject_erased"]
    assert_problem(await client.post("/v1/rights-requests", json={"type": "access", "subject_id": sid},
                                     headers=MANAGER), 409)

    # The audit trail keeps the events but none of the values.
    audit = (await client.get("/v1/audit-events", params={"subject_id": sid, "limit": 500},
                              headers=EVERYTHING)).json()["items"]
    assert "subject.erased" in {e["action"] for e in audit}
    async with db() as session:
        for value in (subject["email"], subject["tag"], subject["phone"], subject["ip"]):
            found = await session.execute(select(AuditEvent.id).where(or_(
                AuditEvent.target.contains(value), AuditEvent.action.contains(value), AuditEvent.actor.contains(value))))
            assert found.first() is None, value


async def test_nothing_erased_is_left_anywhere(client, db):
    """Search every text column of every table for what erasure must remove."""
    subject, _ = await rich_subject(client)
    await erase(client, subject["id"])
    # The tag is in the name, the external reference, the browser, the text shown; the address keeps it too
    # (bookkeeping), so the street is left out of the search.
    gone = [subject["email"], subject["email"].upper(), f"Berg {subject['tag']}", subject["external_ref"],
            f"Firefox {subject['tag']}", f"Ja tack {subject['tag']}", subject["phone"], subject["ip"]]
    async with db() as session:
        for table in metadata.sorted_tables:
            for column in filter(_textual, table.c):
                for value in gone:
                    rows = await session.execute(select(table).where(cast(column, String).contains(value)).limit(1))
                    assert rows.first() is None, f"{value!r} is still in {table.name}.{column.name}"


def _textual(column) -> bool:
    try:
        return column.type.python_type in (str, dict, list)
    except NotImplementedError:
        return False


async def test_erasure_is_all_or_nothing(client, db, monkeypatch):
    subject, recipients = await rich_subject(client)
    sid = subject["id"]
    before_items = (await client.get(f"/v1/subjects/{sid}/data", headers=EVERYTHING)).json()["items"]
    request = (await client.post("/v1/rights-requests", json={"type": "erasure", "subject_id": sid},
                                 headers=MANAGER)).json()
    for action in ("verify", "start"):
        await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": action}, headers=MANAGER)

    async def fail(*_args, **_kwargs):
        raise RuntimeError("injected: the disk filled up halfway through")

    # Late in the erasure: consents withdrawn, contacts suppressed, the register emptied, and then this.
    monkeypatch.setattr(disclosures_service, "create_recipient_tasks", fail)
    broken = await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": "complete"},
                               headers=MANAGER)
    assert broken.status_code == 500
    monkeypatch.undo()

    after = (await client.get(f"/v1/subjects/{sid}", headers=EVERYTHING)).json()
    assert after["status"] == "active" and after["email"] == subject["email"] and after["name"] == subject["name"]
    assert (await client.get(f"/v1/subjects/{sid}/data", headers=EVERYTHING)).json()["items"] == before_items
    consents = (await client.get(f"/v1/subjects/{sid}/consents", headers=EVERYTHING)).json()["items"]
    assert {c["status"] for c in consents} == {"granted"}
    check = await client.post("/v1/marketing/check", headers=EVERYTHING,
                              json={"contacts": [{"email": subject["email"], "channel": "email"}]})
    assert check.json()["results"][0]["reason"] == "consent_granted"
    assert (await client.get(f"/v1/rights-requests/{request['id']}", headers=MANAGER)).json()["status"] == "in_progress"
    for processor in recipients:
        assert (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"] == []
    async with db() as session:
        evidence = (await session.execute(select(ConsentEvent.evidence_ip).where(
            ConsentEvent.subject_id == uuid.UUID(sid)))).scalars().all()
    assert evidence == [subject["ip"], subject["ip"]]

    # And afterwards it goes through.
    done = await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": "complete"},
                             headers=MANAGER)
    assert done.status_code == 200
    async with db() as session:
        assert (await session.get(Subject, uuid.UUID(sid))).status == "erased"
        left = (await session.execute(select(PersonalDataItem.category).where(
            PersonalDataItem.subject_id == uuid.UUID(sid)))).scalars().all()
    assert sorted(left) == ["address", "payment"]


async def test_the_erased_subject_can_no_longer_log_in(client):
    subject, _ = await rich_subject(client)
    await erase(client, subject["id"])
    me = await client.get("/v1/me", headers=as_subject(subject["id"]))
    assert me.json()["status"] == "erased" and me.json()["email"] is None


@pytest.mark.parametrize("concurrent", [2])
async def test_two_completions_at_once_erase_once(client, concurrent):
    subject, _ = await rich_subject(client)
    request = (await client.post("/v1/rights-requests", json={"type": "erasure", "subject_id": subject["id"]},
                                 headers=MANAGER)).json()
    for action in ("verify", "start"):
        await client.post(f"/v1/rights-requests/{request['id']}/actions", json={"action": action}, headers=MANAGER)
    responses = await asyncio.gather(*[client.post(f"/v1/rights-requests/{request['id']}/actions",
                                                   json={"action": "complete"}, headers=MANAGER)
                                       for _ in range(concurrent)])
    assert sorted(r.status_code for r in responses) == [200, 409]
