"""Rights requests: deadlines, the state machine, isolation, notifications, and what completing each type does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.core.time import add_calendar_months
from app.rights_requests.models import RightsRequest
from app.webhooks.models import OutboxEvent
from tests.support import (
    REQUEST_MANAGER,
    add_item,
    as_processor,
    as_subject,
    assert_problem,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

MANAGER = REQUEST_MANAGER


@pytest.mark.parametrize(("received", "due"), [
    ("2026-01-31T10:00:00+00:00", "2026-02-28T10:00:00+00:00"),   # month end clamps
    ("2028-01-31T10:00:00+00:00", "2028-02-29T10:00:00+00:00"),   # leap year
    ("2026-03-31T12:00:00+00:00", "2026-04-30T12:00:00+00:00"),
    ("2026-12-15T09:00:00+00:00", "2027-01-15T09:00:00+00:00"),   # into the next year
    ("2026-02-28T23:30:00+00:00", "2026-03-31T22:30:00+00:00"),   # 1 March 00:30 in Stockholm → 1 April (summer time)
])
def test_one_calendar_month_on_the_swedish_calendar(received, due):
    assert add_calendar_months(datetime.fromisoformat(received), 1) == datetime.fromisoformat(due)


def test_an_extension_gives_three_months_from_receipt():
    assert add_calendar_months(datetime.fromisoformat("2026-01-31T10:00:00+00:00"), 3) == datetime.fromisoformat(
        "2026-04-30T09:00:00+00:00")  # 11:00 in Stockholm both times: winter time, then summer time


async def file(client, subject_id: str | None = None, headers=MANAGER, **fields) -> dict:
    body = {"type": "access", **fields} | ({"subject_id": subject_id} if subject_id else {})
    response = await client.post("/v1/rights-requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def act(client, request_id: str, action: str, reason: str | None = None, headers=MANAGER):
    body = {"action": action} | ({"reason": reason} if reason else {})
    return await client.post(f"/v1/rights-requests/{request_id}/actions", json=body, headers=headers)


async def advance(client, request_id: str, *actions: str) -> dict:
    response = None
    for action in actions:
        response = await act(client, request_id, action)
        assert response.status_code == 200, response.text
    return response.json()


async def test_filing_sets_the_statutory_deadline_and_tells_the_subject(client, mails):
    subject = await make_subject(client)
    request = await file(client, subject["id"], type="erasure", details="Radera allt.")
    received = datetime.fromisoformat(request["received_at"].replace("Z", "+00:00"))
    assert request["status"] == "received" and request["extended"] is False and request["overdue"] is False
    assert request["due_at"] == add_calendar_months(received, 1).isoformat().replace("+00:00", "Z")
    [filed] = request["history"]
    assert (filed["action"], filed["actor"], filed["role"], filed["to_status"]) == ("filed", "tester", "staff", "received")
    [mail] = mails
    assert mail.to == subject["email"] and "senast" in mail.body and "answer by" in mail.body


async def test_subjects_file_for_themselves_only(client):
    me, other = await make_subject(client), await make_subject(client)
    mine = await file(client, headers=as_subject(me["id"]), type="access")
    assert mine["subject_id"] == me["id"] and mine["history"][0]["role"] == "subject"
    theirs = await client.post("/v1/rights-requests", json={"type": "access", "subject_id": other["id"]},
                               headers=as_subject(me["id"]))
    assert_problem(theirs, 404)
    assert_problem(await client.get(f"/v1/rights-requests/{mine['id']}", headers=as_subject(other["id"])), 404)
    assert_problem(await act(client, mine["id"], "verify", headers=as_subject(me["id"])), 403)
    listed = (await client.get("/v1/rights-requests", headers=as_subject(other["id"]))).json()["items"]
    assert listed == []
    staff_without_subject = await client.post("/v1/rights-requests", json={"type": "access"}, headers=MANAGER)
    assert_problem(staff_without_subject, 422)


async def test_objections_name_their_purpose(client):
    subject = await make_subject(client)
    missing = await client.post("/v1/rights-requests", json={"type": "objection", "subject_id": subject["id"]},
                                headers=MANAGER)
    assert assert_problem(missing, 422)["errors"][0]["loc"] == ["body", "purpose"]
    unknown = await client.post("/v1/rights-requests", json={"type": "objection", "subject_id": subject["id"],
                                                             "purpose": "nope"}, headers=MANAGER)
    assert_problem(unknown, 422)


async def test_the_state_machine_refuses_every_illegal_move(client):
    subject = await make_subject(client)
    request = await file(client, subject["id"])
    rid = request["id"]
    for action in ("start", "complete"):
        assert_problem(await act(client, rid, action), 409)
    await advance(client, rid, "verify")
    for action in ("verify", "complete"):
        assert_problem(await act(client, rid, action), 409)
    await advance(client, rid, "start")
    for action in ("verify", "start"):
        assert_problem(await act(client, rid, action), 409)
    done = await advance(client, rid, "complete")
    assert done["status"] == "completed" and done["closed_at"]
    for action in ("verify", "start", "complete"):
        assert_problem(await act(client, rid, action), 409)
    assert_problem(await act(client, rid, "reject", "too late"), 409)
    assert_problem(await act(client, rid, "extend", "too late"), 409)
    assert [h["action"] for h in done["history"]] == ["filed", "verify", "start", "complete"]
    assert_problem(await client.post(f"/v1/rights-requests/{rid}/actions", json={"action": "teleport"},
                                     headers=MANAGER), 422)
    assert_problem(await act(client, str(uuid.uuid4()), "verify"), 404)


async def test_rejection_needs_a_reason_and_tells_of_the_right_to_complain(client, mails):
    subject = await make_subject(client)
    request = await file(client, subject["id"], type="erasure")
    assert_problem(await act(client, request["id"], "reject"), 422)
    rejected = (await act(client, request["id"], "reject", "Vi kunde inte styrka din identitet.")).json()
    assert rejected["status"] == "rejected" and rejected["rejection_reason"].startswith("Vi kunde inte")
    own_view = (await client.get(f"/v1/rights-requests/{request['id']}", headers=as_subject(subject["id"]))).json()
    assert own_view["right_to_complain"]["authority"].endswith("(IMY)")
    assert "imy.se" in own_view["right_to_complain"]["website"]
    assert own_view["history"][-1]["reason"] == "Vi kunde inte styrka din identitet."
    assert_problem(await act(client, request["id"], "verify"), 409)
    assert "IMY" in mails[-1].body and "Vi kunde inte styrka" in mails[-1].body


async def test_extension_once_with_a_reason_before_the_deadline(client, db, mails):
    subject = await make_subject(client)
    request = await file(client, subject["id"])
    assert_problem(await act(client, request["id"], "extend"), 422)
    extended = (await act(client, request["id"], "extend", "Omfattande material.")).json()
    received = datetime.fromisoformat(extended["received_at"].replace("Z", "+00:00"))
    assert extended["extended"] is True and extended["status"] == "received"
    assert extended["due_at"] == add_calendar_months(received, 3).isoformat().replace("+00:00", "Z")
    assert_problem(await act(client, request["id"], "extend", "Again."), 409)
    assert "Omfattande material." in mails[-1].body

    late = await file(client, subject["id"])
    async with db() as session:
        await session.execute(update(RightsRequest).where(RightsRequest.id == uuid.UUID(late["id"]))
                              .values(due_at=datetime.now(UTC) - timedelta(days=1)))
        await session.commit()
    assert_problem(await act(client, late["id"], "extend", "Too late now."), 409)
    overdue = (await client.get(f"/v1/rights-requests/{late['id']}", headers=MANAGER)).json()
    assert overdue["overdue"] is True


async def test_staff_filter_requests(client, db):
    subject = await make_subject(client)
    access = await file(client, subject["id"], type="access")
    erasure = await file(client, subject["id"], type="erasure")
    await advance(client, erasure["id"], "verify")
    async with db() as session:
        await session.execute(update(RightsRequest).where(RightsRequest.id == uuid.UUID(access["id"]))
                              .values(due_at=datetime.now(UTC) - timedelta(hours=1)))
        await session.commit()
    reader = staff("requests:read")

    async def ids(**params) -> set[str]:
        response = await client.get("/v1/rights-requests", params={"limit": 500, **params}, headers=reader)
        assert response.status_code == 200
        return {r["id"] for r in response.json()["items"]}

    assert access["id"] in await ids(overdue="true") and erasure["id"] not in await ids(overdue="true")
    assert erasure["id"] in await ids(status="verified", type="erasure")
    assert access["id"] not in await ids(type="erasure")
    assert erasure["id"] in await ids(due_within_days=31) and erasure["id"] not in await ids(due_within_days=3)
    assert_problem(await client.get("/v1/rights-requests", headers=staff("subjects:read")), 403)


async def test_the_outbox_carries_rights_request_events(client, db):
    subject = await make_subject(client)
    request = await file(client, subject["id"])
    await advance(client, request["id"], "verify", "start", "complete")
    async with db() as session:
        types = (await session.execute(select(OutboxEvent.type).where(
            OutboxEvent.subject_id == uuid.UUID(subject["id"]), OutboxEvent.type.like("rights_request.%"))
            .order_by(OutboxEvent.created_at))).scalars().all()
    assert types == ["rights_request.received", "rights_request.verified", "rights_request.started",
                     "rights_request.completed"]


async def test_restriction_restricts_until_staff_lift_it(client):
    processor = await make_processor(client)
    subject = await make_subject(client)
    await report_disclosure(client, processor["id"], subject["id"], ["email"], "service")
    request = await file(client, subject["id"], type="restriction")
    await advance(client, request["id"], "verify", "start", "complete")
    assert (await client.get(f"/v1/subjects/{subject['id']}", headers=staff("subjects:read"))).json()["status"] == "restricted"
    decide = staff("consents:read")
    service = await client.post("/v1/decisions", json={"subject_id": subject["id"], "purpose": "service"}, headers=decide)
    billing = await client.post("/v1/decisions", json={"subject_id": subject["id"], "purpose": "billing"}, headers=decide)
    assert service.json()["reasons"] == ["subject_restricted"] and billing.json()["allowed"] is True
    tasks = (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"]
    assert [(t["type"], t["subject_id"]) for t in tasks] == [("restriction", subject["id"])]

    assert_problem(await client.post(f"/v1/subjects/{subject['id']}/lift-restriction", json={}, headers=MANAGER), 422)
    lifted = await client.post(f"/v1/subjects/{subject['id']}/lift-restriction",
                               json={"reason": "Uppgifterna är kontrollerade."}, headers=MANAGER)
    assert lifted.status_code == 200 and lifted.json()["status"] == "active"
    assert_problem(await client.post(f"/v1/subjects/{subject['id']}/lift-restriction", json={"reason": "again"},
                                     headers=MANAGER), 409)
    audit = (await client.get("/v1/audit-events", params={"subject_id": subject["id"]},
                              headers=staff("audit:read"))).json()["items"]
    assert {"subject.restricted", "subject.restriction_lifted"} <= {e["action"] for e in audit}


async def test_an_upheld_objection_stops_its_purpose(client):
    subject = await make_subject(client)
    request = await file(client, subject["id"], type="objection", purpose="customer_support")
    await advance(client, request["id"], "verify", "start", "complete")
    decision = await client.post("/v1/decisions", json={"subject_id": subject["id"], "purpose": "customer_support"},
                                 headers=staff("consents:read"))
    assert decision.json()["reasons"] == ["objection_upheld"]


async def test_an_objection_to_marketing_is_absolute(client):
    subject = await make_subject(client)
    await add_item(client, subject["id"], category="phone", value="070-987 65 43", purpose="marketing")
    await client.post(f"/v1/subjects/{subject['id']}/consents", headers=staff("consents:write"),
                      json={"purpose": "marketing", "status": "granted", "channel": "crm"})
    request = await file(client, subject["id"], type="objection", purpose="marketing")
    await advance(client, request["id"], "verify", "start", "complete")
    channels = (await client.get(f"/v1/subjects/{subject['id']}/marketing", headers=staff("consents:read"))).json()
    assert set(channels["channels"].values()) == {"opted_out"}
    consents = (await client.get(f"/v1/subjects/{subject['id']}/consents", headers=staff("consents:read"))).json()
    assert {c["purpose"]: c["status"] for c in consents["items"]}["marketing"] == "withdrawn"
    history = (await client.get(f"/v1/subjects/{subject['id']}/consents/history",
                                headers=staff("consents:read"))).json()["items"]
    assert history[0]["method"] == "objection"
    checked = await client.post("/v1/marketing/check", headers=staff("consents:read"), json={"contacts": [
        {"email": subject["email"], "channel": "email"}, {"phone": "+46709876543", "channel": "sms"}]})
    assert [r["reason"] for r in checked.json()["results"]] == ["opted_out", "opted_out"]


async def test_rectification_tells_the_recipients(client):
    processor = await make_processor(client)
    subject = await make_subject(client)
    await report_disclosure(client, processor["id"], subject["id"], ["address"], "service")
    request = await file(client, subject["id"], type="rectification")
    await advance(client, request["id"], "verify", "start", "complete")
    tasks = (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"]
    assert [t["type"] for t in tasks] == ["rectification"]


async def test_completion_is_mailed(client, mails):
    subject = await make_subject(client)
    request = await file(client, subject["id"], type="access")
    await advance(client, request["id"], "verify", "start", "complete")
    assert [m.subject.split(" / ")[1] for m in mails] == ["We have received your request",
                                                          "Your request has been carried out"]
