"""The disclosure log, processor isolation, the third-country flag, and recipient tasks (Art. 19)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.auth.principals import Principal
from app.disclosures import service as disclosures
from app.disclosures.models import Disclosure
from app.processors import service as processors
from app.processors.models import ProcessorTask
from app.processors.schemas import TaskDetails
from app.webhooks.models import OutboxEvent
from tests.support import (
    ADMIN,
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

WRITER = staff("disclosures:write", "disclosures:read")


async def disclose(client, processor_id: str, subject_id: str, categories=("email",), purpose="newsletter") -> dict:
    """WeSafe records that it disclosed the subject's data to the processor (staff, naming the recipient)."""
    response = await client.post("/v1/disclosures", headers=WRITER, json={
        "subject_id": subject_id, "categories": list(categories), "purpose": purpose, "recipient_id": processor_id})
    assert response.status_code == 201, response.text
    return response.json()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_processor_registry_flags_third_countries(client):
    swedish = await make_processor(client, country="SE")
    american = await make_processor(client, country="US")
    norwegian = await make_processor(client, country="NO")  # EEA, not EU: no transfer
    assert (swedish["third_country"], american["third_country"], norwegian["third_country"]) == (False, True, False)
    listed = (await client.get("/v1/processors", params={"limit": 500}, headers=staff())).json()["items"]
    assert {p["id"] for p in listed} >= {swedish["id"], american["id"]}
    one = (await client.get(f"/v1/processors/{american['id']}", headers=staff())).json()
    assert one["dpa_reference"] == "DPA-1" and one["third_country"] is True and one["webhook_url"] is None
    assert_problem(await client.post("/v1/processors", json={**swedish, "country": "XX"}, headers=ADMIN), 422)
    assert_problem(await client.post("/v1/processors", json={"name": "x", "dpa_reference": "d", "country": "SE",
                                                             "contact_email": "a@b.se"}, headers=staff("subjects:write")), 403)
    assert_problem(await client.get("/v1/processors", headers=as_processor(swedish["id"])), 403)


async def test_processor_clients_mint_processor_tokens_for_their_own_id(client):
    processor = await make_processor(client)
    registered = (await client.post("/v1/clients", json={"name": "p", "role": "processor",
                                                         "processor_id": processor["id"]}, headers=ADMIN)).json()
    issued = (await client.post("/v1/auth/token", data={"grant_type": "client_credentials",
                                                         "client_id": registered["client_id"],
                                                         "client_secret": registered["client_secret"]})).json()
    subject = await make_subject(client)
    await disclose(client, processor["id"], subject["id"])
    reported = await client.post("/v1/disclosures", headers={"Authorization": f"Bearer {issued['access_token']}"},
                                 json={"subject_id": subject["id"], "categories": ["email"], "purpose": "newsletter"})
    assert reported.status_code == 201 and reported.json()["recipient"]["id"] == processor["id"]
    unknown = await client.post("/v1/clients", json={"name": "p", "role": "processor",
                                                     "processor_id": str(uuid.uuid4())}, headers=ADMIN)
    assert assert_problem(unknown, 422)["errors"][0]["loc"] == ["body", "processor_id"]


async def test_a_processor_reports_only_to_itself(client):
    mine, other = await make_processor(client), await make_processor(client)
    subject = await make_subject(client)
    await disclose(client, mine["id"], subject["id"])
    await disclose(client, other["id"], subject["id"])
    response = await client.post("/v1/disclosures", headers=as_processor(mine["id"]), json={
        "subject_id": subject["id"], "categories": ["name", "email", "name"], "purpose": "newsletter",
        "recipient_id": other["id"]})
    assert response.status_code == 201
    body = response.json()
    assert body["recipient"] == {"id": mine["id"], "name": mine["name"], "country": "SE", "third_country": False}
    assert body["categories"] == ["name", "email"] and body["reported_by"] == f"processor:{mine['id']}"


async def test_staff_name_the_recipient_and_the_rules_hold(client):
    processor = await make_processor(client, country="US")
    subject = await make_subject(client)
    base = {"subject_id": subject["id"], "categories": ["email"], "purpose": "service"}
    missing = assert_problem(await client.post("/v1/disclosures", json=base, headers=WRITER), 422)
    assert missing["errors"][0]["loc"] == ["body", "recipient_id"]
    future = base | {"recipient_id": processor["id"], "disclosed_at": iso(datetime.now(UTC) + timedelta(days=1))}
    assert_problem(await client.post("/v1/disclosures", json=future, headers=WRITER), 422)
    assert_problem(await client.post("/v1/disclosures", json=base | {"recipient_id": str(uuid.uuid4())},
                                     headers=WRITER), 404)
    assert_problem(await client.post("/v1/disclosures", json=base | {"subject_id": str(uuid.uuid4()),
                                                                     "recipient_id": processor["id"]},
                                     headers=WRITER), 404)
    assert_problem(await client.post("/v1/disclosures", json=base | {"recipient_id": processor["id"],
                                                                     "purpose": "nope"}, headers=WRITER), 422)
    assert_problem(await client.post("/v1/disclosures", json=base | {"recipient_id": processor["id"]},
                                     headers=staff("disclosures:read")), 403)
    assert_problem(await client.post("/v1/disclosures", json=base | {"recipient_id": processor["id"]},
                                     headers=as_subject(subject["id"])), 403)
    past = iso(datetime.now(UTC) - timedelta(days=3))
    ok = await client.post("/v1/disclosures", json=base | {"recipient_id": processor["id"], "disclosed_at": past},
                           headers=WRITER)
    assert ok.status_code == 201 and ok.json()["disclosed_at"] == past and ok.json()["recorded_at"] > past


async def test_batch_is_all_or_nothing_and_names_the_bad_item(client, db):
    processor = await make_processor(client)
    subject = await make_subject(client)
    await disclose(client, processor["id"], subject["id"])
    good = {"subject_id": subject["id"], "categories": ["email"], "purpose": "newsletter"}
    items = [good] * 5 + [good | {"subject_id": str(uuid.uuid4())}] + [good] * 3
    response = await client.post("/v1/disclosures/batch", json={"items": items}, headers=as_processor(processor["id"]))
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "items", 5, "subject_id"] and body["index"] == 5
    async with db() as session:
        count = (await session.execute(select(func.count()).select_from(Disclosure).where(
            Disclosure.subject_id == uuid.UUID(subject["id"])))).scalar_one()
    assert count == 1  # the staff's disclosure only: nothing half-written
    schema_error = await client.post("/v1/disclosures/batch", json={"items": [good, good | {"categories": []}]},
                                     headers=as_processor(processor["id"]))
    assert assert_problem(schema_error, 422)["errors"][0]["loc"][:4] == ["body", "items", 1, "categories"]
    accepted = await client.post("/v1/disclosures/batch", json={"items": [good] * 1000},
                                 headers=as_processor(processor["id"]))
    assert accepted.status_code == 201 and accepted.json() == {"accepted": 1000}
    assert_problem(await client.post("/v1/disclosures/batch", json={"items": [good] * 1001},
                                     headers=as_processor(processor["id"])), 422)


async def test_who_received_my_data(client):
    swedish, american = await make_processor(client, country="SE"), await make_processor(client, country="US")
    subject, other = await make_subject(client), await make_subject(client)
    for processor in (swedish, american):
        await report_disclosure(client, processor["id"], subject["id"], ["email"], "newsletter")
    own = await client.get(f"/v1/subjects/{subject['id']}/disclosures", headers=as_subject(subject["id"]))
    assert own.status_code == 200
    recipients = {item["recipient"]["name"]: item["recipient"] for item in own.json()["items"]}
    assert recipients[american["name"]]["third_country"] is True and recipients[american["name"]]["country"] == "US"
    assert recipients[swedish["name"]]["third_country"] is False
    assert_problem(await client.get(f"/v1/subjects/{subject['id']}/disclosures", headers=as_subject(other["id"])),
                   404)
    by_staff = await client.get(f"/v1/subjects/{subject['id']}/disclosures", headers=staff("disclosures:read"))
    assert len(by_staff.json()["items"]) == 2
    assert_problem(await client.get(f"/v1/subjects/{subject['id']}/disclosures",
                                    headers=as_processor(swedish["id"])), 403)


async def test_recipient_tasks_go_to_exactly_the_recipients(app, client):
    recipients = [await make_processor(client) for _ in range(3)]
    bystander = await make_processor(client)
    subject, other = await make_subject(client), await make_subject(client)
    for processor in recipients + recipients[:1]:  # one recipient twice: still one task
        await report_disclosure(client, processor["id"], subject["id"], ["email"], "newsletter")
    await report_disclosure(client, bystander["id"], other["id"], ["email"], "newsletter")
    async with app.state.sessionmaker() as session:
        tasks = await disclosures.create_recipient_tasks(session, uuid.UUID(subject["id"]), "erasure",
                                                         actor=Principal(role="staff", sub="dpo"))
        await session.commit()
    assert sorted(str(t.processor_id) for t in tasks) == sorted(p["id"] for p in recipients)
    assert all(t.status == "open" and t.type == "erasure" for t in tasks)
    async with app.state.sessionmaker() as session:
        none = await disclosures.create_recipient_tasks(session, uuid.UUID(str(uuid.uuid4())), "erasure",
                                                        actor=Principal(role="staff", sub="dpo"))
    assert none == []


async def make_tasks(app, client, count: int = 1, task_type: str = "erasure") -> tuple[list[dict], dict]:
    processors = [await make_processor(client) for _ in range(count)]
    subject = await make_subject(client)
    for processor in processors:
        await report_disclosure(client, processor["id"], subject["id"], ["email"], "newsletter")
    async with app.state.sessionmaker() as session:
        await disclosures.create_recipient_tasks(session, uuid.UUID(subject["id"]), task_type,
                                                 actor=Principal(role="staff", sub="dpo"))
        await session.commit()
    return processors, subject


async def test_processors_see_and_complete_only_their_own_tasks(app, client):
    (mine, other), subject = await make_tasks(app, client, 2)
    my_tasks = (await client.get("/v1/processor-tasks", headers=as_processor(mine["id"]))).json()["items"]
    assert len(my_tasks) == 1 and my_tasks[0]["processor_id"] == mine["id"] and my_tasks[0]["subject_id"] == subject["id"]
    # Asking for another processor's tasks gives one's own.
    spoofed = await client.get("/v1/processor-tasks", params={"processor_id": other["id"]},
                               headers=as_processor(mine["id"]))
    assert [t["id"] for t in spoofed.json()["items"]] == [my_tasks[0]["id"]]
    their_task = (await client.get("/v1/processor-tasks", headers=as_processor(other["id"]))).json()["items"][0]
    assert_problem(await client.post(f"/v1/processor-tasks/{their_task['id']}/complete",
                                     headers=as_processor(mine["id"]), json={}), 404)
    assert_problem(await client.post(f"/v1/processor-tasks/{my_tasks[0]['id']}/complete",
                                     headers=staff("disclosures:read", "admin"), json={}), 403)
    done = await client.post(f"/v1/processor-tasks/{my_tasks[0]['id']}/complete", headers=as_processor(mine["id"]),
                             json={"note": "Erased from the mailing list."})
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["note"].startswith("Erased")
    # A retry (the first answer lost) is safe: the same task, completed once, with the first note.
    again = await client.post(f"/v1/processor-tasks/{my_tasks[0]['id']}/complete", headers=as_processor(mine["id"]),
                              json={"note": "Retried."})
    assert again.status_code == 200 and again.json() == done.json()
    # One task, one completion event.
    async with app.state.sessionmaker() as session:
        events = (await session.execute(select(OutboxEvent).where(OutboxEvent.type == "processor_task.completed"))).scalars()
        assert sum(e.payload["task_id"] == my_tasks[0]["id"] for e in events) == 1
    assert (await client.get(f"/v1/processor-tasks/{their_task['id']}", headers=as_processor(mine["id"]))).status_code == 404
    assert (await client.get("/v1/processor-tasks", params={"status": "open"},
                             headers=as_processor(mine["id"]))).json()["items"] == []


async def test_staff_see_all_tasks_and_which_are_overdue(app, client, db):
    (processor,), subject = await make_tasks(app, client, 1, "rectification")
    async with db() as session:
        task = (await session.execute(select(ProcessorTask).where(
            ProcessorTask.processor_id == uuid.UUID(processor["id"])))).scalar_one()
        task.created_at = datetime.now(UTC) - timedelta(days=31)
        assert task.due_at > datetime.now(UTC)  # due with its request, a month on: not late yet
        task.due_at = datetime.now(UTC) - timedelta(days=1)
        await session.commit()
    reader = staff("disclosures:read")
    listed = (await client.get("/v1/processor-tasks", params={"processor_id": processor["id"]},
                               headers=reader)).json()["items"]
    assert [(t["type"], t["overdue"]) for t in listed] == [("rectification", True)]
    overdue = (await client.get("/v1/processor-tasks", params={"overdue": "true", "limit": 500},
                                headers=reader)).json()["items"]
    assert str(task.id) in {t["id"] for t in overdue} and all(t["overdue"] for t in overdue)
    young = (await client.get("/v1/processor-tasks", params={"older_than_days": 40, "processor_id": processor["id"]},
                              headers=reader)).json()["items"]
    assert young == []
    assert_problem(await client.get("/v1/processor-tasks", headers=staff("subjects:read")), 403)
    assert_problem(await client.get("/v1/processor-tasks", headers=as_subject(subject["id"])), 403)


async def test_an_erasure_task_says_whom_to_erase_and_is_due_with_the_request(client):
    mailer, crm = await make_processor(client), await make_processor(client)
    subject = await make_subject(client, name="Berit Berg")
    phone = await add_item(client, subject["id"], category="phone", value="+46701234567", purpose="service",
                           source="direct")
    await add_item(client, subject["id"], category="payment", value="4111 1111 1111 1234", purpose="billing",
                   source="direct")
    await report_disclosure(client, mailer["id"], subject["id"], ["email"], "newsletter")
    await report_disclosure(client, crm["id"], subject["id"], ["name", "phone", "payment"], "service")
    request = await complete_request(client, subject["id"], "erasure")

    [for_mailer] = (await client.get("/v1/processor-tasks", headers=as_processor(mailer["id"]))).json()["items"]
    [for_crm] = (await client.get("/v1/processor-tasks", headers=as_processor(crm["id"]))).json()["items"]
    assert for_mailer["due_at"] == request["due_at"] and for_crm["due_at"] == request["due_at"]
    # Each is told only what it received, with the values to find the person by (the register is gone).
    assert for_mailer["details"] == {"categories": ["email"], "identifiers": {"email": [subject["email"]]},
                                     "changes": None}
    assert for_crm["details"]["categories"] == ["name", "payment", "phone"]
    assert for_crm["details"]["identifiers"] == {"name": ["Berit Berg"], "phone": [phone["value"]]}
    one = await client.get(f"/v1/processor-tasks/{for_crm['id']}", headers=as_processor(crm["id"]))
    assert one.status_code == 200 and one.json() == for_crm
    assert (await client.get(f"/v1/processor-tasks/{for_crm['id']}",
                             headers=staff("disclosures:read"))).json()["id"] == for_crm["id"]
    # Done, the identifiers go; the categories stay on record.
    done = await client.post(f"/v1/processor-tasks/{for_crm['id']}/complete", headers=as_processor(crm["id"]))
    assert done.json()["details"] == {"categories": ["name", "payment", "phone"], "identifiers": None,
                                      "changes": None}


async def test_a_rectification_task_says_what_changed(client):
    processor = await make_processor(client)
    subject = await make_subject(client)
    phone = await add_item(client, subject["id"], category="phone", value="+46701111111", purpose="service",
                           source="direct")
    await add_item(client, subject["id"], category="address", value="Gamla vägen 1", purpose="service",
                   source="direct")
    await report_disclosure(client, processor["id"], subject["id"], ["phone"], "service")
    filed = await client.post("/v1/rights-requests", headers=REQUEST_MANAGER,
                              json={"subject_id": subject["id"], "type": "rectification",
                                    "details": "Mitt nummer är +46702222222"})
    fixed = await client.patch(f"/v1/subjects/{subject['id']}/data/{phone['id']}", json={"value": "+46702222222"},
                               headers=staff("subjects:write"))
    assert fixed.status_code == 200
    for action in ("verify", "start", "complete"):
        moved = await client.post(f"/v1/rights-requests/{filed.json()['id']}/actions", json={"action": action},
                                  headers=REQUEST_MANAGER)
        assert moved.status_code == 200
    [task] = (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"]
    assert task["type"] == "rectification" and task["due_at"] == filed.json()["due_at"]
    assert [(c["category"], c["value"]) for c in task["details"]["changes"]] == [("phone", "+46702222222")]


def _comparable(response) -> tuple:
    """An answer as its caller can compare it: status, media type and body, less what differs per request."""
    body = {k: v for k, v in response.json().items() if k not in ("instance", "request_id")}
    return response.status_code, response.headers["content-type"], body


async def test_a_processor_cannot_report_on_a_subject_not_disclosed_to_it(client, db):
    """Issue 17, item 8: a processor reporting on any subject became its recipient (and got its erasure tasks),
    and 404 against 201 told it which ids exist."""
    processor, other = await make_processor(client), await make_processor(client)
    subject = await make_subject(client)
    await disclose(client, other["id"], subject["id"])  # disclosed to another processor: not to this one
    body = {"categories": ["email", "name"], "purpose": "newsletter"}
    known = await client.post("/v1/disclosures", headers=as_processor(processor["id"]),
                              json=body | {"subject_id": subject["id"]})
    unknown = await client.post("/v1/disclosures", headers=as_processor(processor["id"]),
                                json=body | {"subject_id": str(uuid.uuid4())})
    assert_problem(known, 404)
    assert _comparable(known) == _comparable(unknown)  # no existence oracle
    # The same in a batch: the item is refused as a subject that does not exist would be.
    batch = [{"subject_id": subject["id"]} | body]
    known_batch = await client.post("/v1/disclosures/batch", headers=as_processor(processor["id"]),
                                    json={"items": batch})
    unknown_batch = await client.post("/v1/disclosures/batch", headers=as_processor(processor["id"]),
                                      json={"items": [batch[0] | {"subject_id": str(uuid.uuid4())}]})
    assert_problem(known_batch, 422)
    assert _comparable(known_batch) == _comparable(unknown_batch)
    # Nothing recorded: not among the subject's recipients, and no task when the subject is erased.
    async with db() as session:
        rows = (await session.execute(select(Disclosure.recipient_id).where(
            Disclosure.subject_id == uuid.UUID(subject["id"])))).scalars().all()
    assert [str(r) for r in rows] == [other["id"]]
    seen = await client.get(f"/v1/subjects/{subject['id']}/disclosures", headers=as_subject(subject["id"]))
    assert [d["recipient"]["id"] for d in seen.json()["items"]] == [other["id"]]
    await complete_request(client, subject["id"], "erasure")
    assert (await client.get("/v1/processor-tasks", headers=as_processor(processor["id"]))).json()["items"] == []
    assert len((await client.get("/v1/processor-tasks", headers=as_processor(other["id"]))).json()["items"]) == 1


async def test_a_processor_reports_on_subjects_disclosed_to_it_by_staff_or_by_a_task(app, client):
    processor = await make_processor(client)
    by_staff, by_task = await make_subject(client), await make_subject(client)
    await disclose(client, processor["id"], by_staff["id"], ["email"], "newsletter")
    async with app.state.sessionmaker() as session:
        await processors.create_tasks(session, uuid.UUID(by_task["id"]), "rectification",
                                      {uuid.UUID(processor["id"]): TaskDetails(categories=["phone"])},
                                      actor=Principal(role="system", sub="test"))
        await session.commit()
    for subject in (by_staff, by_task):
        reported = await client.post("/v1/disclosures", headers=as_processor(processor["id"]), json={
            "subject_id": subject["id"], "categories": ["name"], "purpose": "service"})
        assert reported.status_code == 201, reported.text
        assert reported.json()["reported_by"] == f"processor:{processor['id']}"
    batch = await client.post("/v1/disclosures/batch", headers=as_processor(processor["id"]), json={"items": [
        {"subject_id": s["id"], "categories": ["email"], "purpose": "newsletter"} for s in (by_staff, by_task)]})
    assert batch.status_code == 201 and batch.json() == {"accepted": 2}
    listed = await client.get(f"/v1/subjects/{by_staff['id']}/disclosures", headers=as_subject(by_staff["id"]))
    assert sorted(d["categories"][0] for d in listed.json()["items"]) == ["email", "email", "name"]
    # Staff still record a first disclosure for any subject, and an unknown one is a 404 to them too.
    assert_problem(await client.post("/v1/disclosures", headers=WRITER, json={
        "subject_id": str(uuid.uuid4()), "categories": ["email"], "purpose": "newsletter",
        "recipient_id": processor["id"]}), 404)
