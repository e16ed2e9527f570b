"""The personal data breach register (GDPR Art. 33, 34): a processor's report, the assessment and its rules,
IMY's 72 hours, finding the subjects affected, telling them by mail, closing, and retention."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.breaches import service as breaches
from app.breaches.models import Breach
from app.core.db import unit_of_work
from app.webhooks.models import OutboxEvent
from tests.support import (
    ADMIN,
    as_processor,
    as_subject,
    assert_problem,
    auth,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

MANAGER = staff("breaches:manage")
NOTICE = {
    "what_happened": {
        "sv": "En lista med kunders namn och e-postadresser gick att läsa utan inloggning i två dagar.",
        "en": "A list of customers' names and e-mail addresses was readable without logging in for two days.",
    },
    "consequences": {
        "sv": "Du kan få falska mejl som ser ut att komma från oss.",
        "en": "You may receive fake e-mails that look as if they came from us.",
    },
    "measures": {
        "sv": "Vi har stängt listan och bytt alla nycklar.",
        "en": "We have closed the list and replaced every key.",
    },
    "advice": {
        "sv": "Öppna inte länkar i oväntade mejl. Vi frågar aldrig efter ditt lösenord.",
        "en": "Do not open links in unexpected e-mails. We never ask for your password.",
    },
}
ASSESS_HIGH = {
    "action": "assess",
    "risk": "high",
    "notify_imy": True,
    "imy_reason": "Names and addresses readable by anyone.",
    "notify_subjects": True,
    "subjects_reason": "A high risk of targeted phishing.",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def register(client, **fields) -> dict:
    body = {"title": "Test breach", "description": "Something went wrong.", **fields}
    response = await client.post("/v1/breaches", json=body, headers=MANAGER)
    assert response.status_code == 201, response.text
    return response.json()


async def act(client, breach_id: str, **body):
    return await client.post(f"/v1/breaches/{breach_id}/actions", json=body, headers=MANAGER)


async def link_language(client, mails, subject: dict, language: str) -> None:
    """The subject signs in to the privacy center from a device that chose cookies in `language`."""
    visitor = await client.post("/v1/visitor-consents", json={"choices": {}, "language": language})
    assert visitor.status_code == 201, visitor.text
    asked = await client.post("/v1/auth/subject-login", json={"email": subject["email"]})
    assert asked.status_code in (200, 202), asked.text
    code = re.search(r"\b(\d{6})\b", [m for m in mails if m.to == subject["email"]][-1].body).group(1)
    verified = await client.post(
        "/v1/auth/subject-login/verify",
        json={"email": subject["email"], "code": code, "visitor_id": visitor.json()["visitor_id"]},
    )
    assert verified.status_code == 200, verified.text


async def test_the_walk_from_a_processors_report_to_the_mails_the_subjects_received(client, db, mails):
    processor = await make_processor(client, name="Mailhouse AB")
    other = await make_processor(client)
    anna = await make_subject(client, name="Anna Svensson")
    bob = await make_subject(client, name="Bob Smith")
    earlier = await make_subject(client, name="Cecilia Ek")
    await link_language(client, mails, bob, "en")
    start = datetime.now(UTC)
    for person in (anna, bob):
        await report_disclosure(client, processor["id"], person["id"], ["name", "email"], "service")
    outside = await client.post(
        "/v1/disclosures",
        headers=staff("disclosures:write"),
        json={
            "subject_id": earlier["id"],
            "categories": ["email"],
            "purpose": "service",
            "recipient_id": processor["id"],
            "disclosed_at": iso(start - timedelta(days=30)),
        },
    )
    assert outside.status_code == 201, outside.text

    # 1. The processor reports the breach (Art. 33(2)).
    reported = await client.post(
        "/v1/breach-reports",
        headers=as_processor(processor["id"]),
        json={
            "title": "Newsletter export readable by anyone",
            "description": "Our storage bucket with WeSafe's newsletter export was public for two days.",
            "occurred_at": iso(start - timedelta(days=2)),
            "processor_aware_at": iso(start - timedelta(hours=3)),
            "data_categories": ["name", "email"],
            "subject_categories": ["newsletter_subscribers"],
            "subjects_estimate": 2,
        },
    )
    assert reported.status_code == 201, reported.text
    report = reported.json()
    breach_id = report["id"]
    assert reported.headers["Location"] == f"/v1/breach-reports/{breach_id}"
    assert report["status"] == "open"
    # It sees its own report, and nobody else's; the register is staff's.
    mine = await client.get("/v1/breach-reports", headers=as_processor(processor["id"]))
    assert [r["id"] for r in mine.json()["items"]] == [breach_id]
    assert_problem(
        await client.get(f"/v1/breach-reports/{breach_id}", headers=as_processor(other["id"])), 404
    )
    assert (await client.get("/v1/breach-reports", headers=as_processor(other["id"]))).json()["items"] == []
    assert_problem(await client.get(f"/v1/breaches/{breach_id}", headers=as_processor(processor["id"])), 403)
    # Staff are alerted: the outbox announces it to their webhooks.
    async with db() as session:
        events = (
            await session.execute(select(OutboxEvent).where(OutboxEvent.type == "breach.reported"))
        ).scalars()
        announced = [e.payload for e in events if e.payload["breach_id"] == breach_id]
    assert announced == [
        {
            "breach_id": breach_id,
            "status": "open",
            "change": "reported",
            "due_at": announced[0]["due_at"],
            "reported_by_processor": processor["id"],
        }
    ]
    assert announced[0]["due_at"].endswith("Z")  # the REST API's form, as every payload timestamp

    # 2. Staff see it with IMY's deadline: 72 hours after WeSafe became aware (the report's arrival).
    breach = (await client.get(f"/v1/breaches/{breach_id}", headers=MANAGER)).json()
    assert breach["processor_id"] == processor["id"] and breach["status"] == "open"
    assert when(breach["due_at"]) - when(breach["aware_at"]) == timedelta(hours=72)
    assert breach["imy"] == {
        "due_at": breach["due_at"],
        "overdue": False,
        "notified_at": None,
        "reference": None,
        "delay_reason": None,
    }

    # 3. Staff assess it: high risk; IMY and the subjects are told.
    assessed = await act(client, breach_id, **ASSESS_HIGH, measures="Bucket closed; keys rotated.")
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["status"] == "assessed" and assessed.json()["assessment"]["risk"] == "high"

    # 4. Staff find the subjects: everyone whose data the processor received since the day before.
    query = {
        "source": "disclosures",
        "recipient_id": processor["id"],
        "from": iso(start - timedelta(days=1)),
        "until": iso(datetime.now(UTC) + timedelta(minutes=1)),
    }
    found = await client.post(f"/v1/breaches/{breach_id}/subject-queries", json=query, headers=MANAGER)
    assert found.status_code == 201, found.text
    assert found.json()["matched"] == 2 and found.json()["linked"] == 2
    assert found.json()["criteria"] == query
    saved = (await client.get(f"/v1/breaches/{breach_id}/subject-queries", headers=MANAGER)).json()
    assert [q["id"] for q in saved] == [found.json()["id"]]

    # 5. IMY is notified, in time.
    notified = await act(client, breach_id, action="record_imy_notification", reference="IMY-2026-0042")
    assert notified.status_code == 200, notified.text
    assert notified.json()["status"] == "notified" and notified.json()["imy"]["reference"] == "IMY-2026-0042"

    # 6. The subjects are told, each once, in their language when it is known.
    del mails[:]
    told = await client.post(
        f"/v1/breaches/{breach_id}/subject-notifications", json={"notice": NOTICE}, headers=MANAGER
    )
    assert told.status_code == 202, told.text
    assert told.json()["queued"] == 2
    by_address = {m.to: m for m in mails}
    assert set(by_address) == {anna["email"], bob["email"]}
    to_anna, to_bob = by_address[anna["email"]], by_address[bob["email"]]
    # Anna's language is not known: Swedish, then English. Bob chose cookies in English: English only.
    assert (
        to_anna.subject
        == "Viktig information om dina personuppgifter / Important information about your personal data"
    )
    assert to_anna.body.startswith("Hej Anna Svensson!") and "Hello Anna Svensson," in to_anna.body
    assert to_bob.subject == "Important information about your personal data"
    assert to_bob.body.startswith("Hello Bob Smith,") and "Hej" not in to_bob.body
    for text in (
        NOTICE["what_happened"]["en"],
        NOTICE["consequences"]["en"],
        NOTICE["measures"]["en"],
        NOTICE["advice"]["en"],
        "dataskydd@wesafe.se",
        "e-mail address, name",
        "www.imy.se",
    ):
        assert text in to_bob.body and text in to_anna.body
    for text in (NOTICE["advice"]["sv"], "e-postadress, namn", "Integritetsskyddsmyndigheten"):
        assert text in to_anna.body
    links = (await client.get(f"/v1/breaches/{breach_id}/subjects", headers=MANAGER)).json()["items"]
    assert {(link["subject_id"], link["notification"], link["language"]) for link in links} == {
        (anna["id"], "sent", None),
        (bob["id"], "sent", "en"),
    }
    assert all(link["notified_at"] for link in links)
    # Asked again: nobody is mailed twice.
    again = await client.post(f"/v1/breaches/{breach_id}/subject-notifications", json={}, headers=MANAGER)
    assert again.status_code == 202 and again.json()["queued"] == 0
    assert again.json()["subjects"] == {"affected": 2, "pending": 0, "sent": 2, "skipped": 0}
    assert len(mails) == 2

    # 7. Closed; every step is in the audit trail, the subjects' own chains included.
    closed = await act(client, breach_id, action="close", note="Measures in place; subjects told.")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    trail = (
        await client.get("/v1/audit-events", params={"subject_id": anna["id"]}, headers=staff("audit:read"))
    ).json()["items"]
    assert {"breach.subject_linked", "breach.subject_notified"} <= {e["action"] for e in trail}
    for action in (
        "breach.reported",
        "breach.assess",
        "breach.subjects_queried",
        "breach.record_imy_notification",
        "breach.subjects_notification_requested",
        "breach.close",
    ):
        events = (
            await client.get("/v1/audit-events", params={"action": action}, headers=staff("audit:read"))
        ).json()["items"]
        assert breach_id in {e["target"] for e in events}, action
    # The Art. 30 record shows the register.
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()
    assert record["breach_register"]["kept"] is True and record["breach_register"]["by_status"]["closed"] >= 1
    assert "5 years" in record["breach_register"]["retention"]


async def test_imys_72_hours_are_a_deadline_and_a_late_notification_says_why(client):
    late = await register(client, aware_at=iso(datetime.now(UTC) - timedelta(hours=80)))
    on_time = await register(client)
    assert late["overdue"] is True and late["imy"]["overdue"] is True
    assert on_time["overdue"] is False
    overdue = (
        await client.get("/v1/breaches", params={"overdue": "true", "limit": 500}, headers=MANAGER)
    ).json()
    assert late["id"] in {b["id"] for b in overdue["items"]}
    assert on_time["id"] not in {b["id"] for b in overdue["items"]}
    assert (await act(client, late["id"], **ASSESS_HIGH)).status_code == 200
    refused = assert_problem(
        await act(client, late["id"], action="record_imy_notification", reference="IMY-1"), 422
    )
    assert refused["errors"][0]["loc"] == ["body", "delay_reason"]
    done = await act(
        client,
        late["id"],
        action="record_imy_notification",
        reference="IMY-1",
        delay_reason="The processor's report reached the wrong inbox.",
    )
    assert done.status_code == 200, done.text
    assert done.json()["overdue"] is False
    assert done.json()["imy"]["delay_reason"] == "The processor's report reached the wrong inbox."
    # Notified in time, no reason is kept (nor needed).
    assert (await act(client, on_time["id"], **ASSESS_HIGH)).status_code == 200
    in_time = await act(client, on_time["id"], action="record_imy_notification", reference="IMY-2")
    assert in_time.status_code == 200 and in_time.json()["imy"]["delay_reason"] is None


@pytest.mark.parametrize(
    ("risk", "notify_imy", "notify_subjects", "exception", "status"),
    [
        ("unlikely", False, False, None, 200),
        ("unlikely", True, False, None, 200),
        ("risk", False, False, None, 422),  # Art. 33(1): only a breach unlikely to harm may go unnotified
        ("risk", True, False, None, 200),
        ("high", False, True, None, 422),
        ("high", True, False, None, 422),  # Art. 34(1): the subjects are told ...
        ("high", True, False, "unintelligible", 200),  # ... unless an Art. 34(3) ground applies
        ("high", True, False, "risk_removed", 200),
        ("high", True, False, "public_communication", 200),
        ("high", True, True, None, 200),
    ],
)
async def test_the_assessments_decisions_follow_articles_33_and_34(
    client, risk, notify_imy, notify_subjects, exception, status
):
    breach = await register(client)
    body = {**ASSESS_HIGH, "risk": risk, "notify_imy": notify_imy, "notify_subjects": notify_subjects}
    if exception:
        body["subjects_exception"] = exception
    response = await act(client, breach["id"], **body)
    if status == 422:
        assert_problem(response, 422)
        assert (await client.get(f"/v1/breaches/{breach['id']}", headers=MANAGER)).json()["status"] == "open"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["assessment"]["subjects_exception"] == exception


ACTIONS = {
    "assess": ASSESS_HIGH,
    "record_imy_notification": {"action": "record_imy_notification", "reference": "IMY-9"},
    "record_no_notification": {"action": "record_no_notification"},
    "close": {"action": "close"},
}
# Which actions each state allows (ASSESS_HIGH decides to notify IMY, so record_no_notification never fits).
ALLOWED = {
    "open": {"assess"},
    "assessed": {"assess", "record_imy_notification"},
    "notified": {"close"},
    "closed": set(),
}


async def _breach_in(client, state: str) -> str:
    breach = (await register(client))["id"]
    for step in ("assess", "record_imy_notification", "close")[: list(ALLOWED).index(state)]:
        assert (await act(client, breach, **ACTIONS[step])).status_code == 200
    return breach


@pytest.mark.parametrize("state", list(ALLOWED))
async def test_every_action_not_allowed_in_a_state_is_a_409_and_changes_nothing(client, state):
    for action, body in ACTIONS.items():
        if action in ALLOWED[state]:
            continue
        breach = await _breach_in(client, state)
        before = (await client.get(f"/v1/breaches/{breach}", headers=MANAGER)).json()
        assert_problem(await act(client, breach, **body), 409)
        assert (await client.get(f"/v1/breaches/{breach}", headers=MANAGER)).json() == before


async def test_a_breach_imy_need_not_hear_of_is_recorded_so_and_its_subjects_are_not_mailed(client, mails):
    breach = (await register(client))["id"]
    decided = await act(
        client, breach, **{**ASSESS_HIGH, "risk": "unlikely", "notify_imy": False, "notify_subjects": False}
    )
    assert decided.status_code == 200
    assert_problem(await act(client, breach, action="record_imy_notification", reference="X"), 409)
    assert_problem(
        await client.post(
            f"/v1/breaches/{breach}/subject-notifications", json={"notice": NOTICE}, headers=MANAGER
        ),
        409,
    )
    moved = await act(client, breach, action="record_no_notification", note="Encrypted laptop, key not lost.")
    assert moved.status_code == 200 and moved.json()["status"] == "not_notified"
    assert moved.json()["overdue"] is False
    assert (await act(client, breach, action="close")).json()["status"] == "closed"
    assert [m for m in mails if "personuppgifter" in m.subject] == []


async def test_a_breach_is_not_closed_while_subjects_to_be_told_are_not(client, mails):
    processor = await make_processor(client)
    subject = await make_subject(client)
    await report_disclosure(client, processor["id"], subject["id"], ["email"], "service")
    breach = (await register(client))["id"]
    await act(client, breach, **ASSESS_HIGH)
    await act(client, breach, action="record_imy_notification", reference="IMY-3")
    query = {
        "source": "disclosures",
        "recipient_id": processor["id"],
        "from": iso(datetime.now(UTC) - timedelta(hours=1)),
        "until": iso(datetime.now(UTC) + timedelta(hours=1)),
    }
    assert (await client.post(f"/v1/breaches/{breach}/subject-queries", json=query, headers=MANAGER)).json()[
        "linked"
    ] == 1
    refused = assert_problem(await act(client, breach, action="close"), 409)
    assert "1 affected subject" in refused["detail"]
    # The first call must carry the notice; later ones may leave it out, and may not change it.
    assert_problem(
        await client.post(f"/v1/breaches/{breach}/subject-notifications", json={}, headers=MANAGER), 422
    )
    sent = await client.post(
        f"/v1/breaches/{breach}/subject-notifications", json={"notice": NOTICE}, headers=MANAGER
    )
    # The answer counts what is queued; the mail goes out after it.
    assert sent.status_code == 202 and sent.json()["subjects"]["pending"] == 1
    after = (await client.get(f"/v1/breaches/{breach}", headers=MANAGER)).json()["subjects"]
    assert after == {"affected": 1, "pending": 0, "sent": 1, "skipped": 0}
    changed = {**NOTICE, "advice": {"sv": "Byt lösenord.", "en": "Change your password."}}
    assert_problem(
        await client.post(
            f"/v1/breaches/{breach}/subject-notifications", json={"notice": changed}, headers=MANAGER
        ),
        409,
    )
    assert (await act(client, breach, action="close")).status_code == 200


async def test_the_audit_trail_finds_everyone_a_stolen_account_read(client):
    victims = [await make_subject(client) for _ in range(3)]
    bystander = await make_subject(client)
    thief = f"stolen-{uuid.uuid4().hex[:8]}"
    for victim in victims:
        read = await client.get(f"/v1/subjects/{victim['id']}", headers=auth("staff", thief, "subjects:read"))
        assert read.status_code == 200
    await client.get(f"/v1/subjects/{bystander['id']}", headers=staff("subjects:read"))
    breach = (await register(client))["id"]
    now = datetime.now(UTC)
    window = {"from": iso(now - timedelta(hours=1)), "until": iso(now + timedelta(minutes=5))}
    found = await client.post(
        f"/v1/breaches/{breach}/subject-queries",
        headers=MANAGER,
        json={"source": "audit", "actor": thief, "action": "subject.read", **window},
    )
    assert found.status_code == 201, found.text
    assert found.json()["matched"] == 3 and found.json()["linked"] == 3
    linked = (await client.get(f"/v1/breaches/{breach}/subjects", headers=MANAGER)).json()["items"]
    assert {link["subject_id"] for link in linked} == {v["id"] for v in victims}
    assert all(link["notification"] is None for link in linked)
    # Run again: the same people, none linked twice.
    again = await client.post(
        f"/v1/breaches/{breach}/subject-queries",
        headers=MANAGER,
        json={"source": "audit", "actor": thief, **window},
    )
    assert again.json()["matched"] == 3 and again.json()["linked"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {
            "source": "audit",
            "from": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
        },  # neither action nor actor
        {"source": "audit", "actor": "x", "from": "2026-01-03T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
        {"source": "audit", "actor": "x", "from": "2026-01-03T00:00:00Z", "until": "2026-01-03T00:00:00Z"},
        {
            "source": "disclosures",
            "recipient_id": "not-a-uuid",
            "from": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
        },
        {
            "source": "disclosures",
            "recipient_id": str(uuid.uuid4()),
            "from": "2026-01-02",
            "until": "2026-01-03",
        },
        {"source": "disclosures", "recipient_id": str(uuid.uuid4()), "from": 1767225600, "until": 1767312000},
        {
            "source": "disclosures",
            "recipient_id": str(uuid.uuid4()),
            "from": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
            "categories": ["dna"],
        },
        {"source": "nowhere", "from": "2026-01-02T00:00:00Z", "until": "2026-01-03T00:00:00Z"},
        {
            "source": "audit",
            "actor": "x",
            "from": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
            "extra": 1,
        },
        {
            "source": "audit",
            "actor": "\u0000",
            "from": "2026-01-02T00:00:00Z",
            "until": "2026-01-03T00:00:00Z",
        },
    ],
)
async def test_a_malformed_query_is_a_422(client, body):
    breach = (await register(client))["id"]
    assert_problem(
        await client.post(f"/v1/breaches/{breach}/subject-queries", json=body, headers=MANAGER), 422
    )


async def test_an_unknown_recipient_or_breach_is_a_404(client):
    breach = (await register(client))["id"]
    window = {"from": "2026-01-02T00:00:00Z", "until": "2026-01-03T00:00:00Z"}
    assert_problem(
        await client.post(
            f"/v1/breaches/{breach}/subject-queries",
            headers=MANAGER,
            json={"source": "disclosures", "recipient_id": str(uuid.uuid4()), **window},
        ),
        404,
    )
    for method, path in (
        ("get", ""),
        ("post", "/actions"),
        ("post", "/subject-queries"),
        ("get", "/subjects"),
        ("get", "/subject-queries"),
        ("post", "/subject-notifications"),
    ):
        body = {
            "post": {
                "/actions": ACTIONS["close"],
                "/subject-queries": {"source": "audit", "actor": "x", **window},
                "/subject-notifications": {},
            }.get(path)
        }.get(method)
        response = await client.request(
            method, f"/v1/breaches/{uuid.uuid4()}{path}", json=body, headers=MANAGER
        )
        assert_problem(response, 404)


@pytest.mark.parametrize(
    "fields",
    [
        {"aware_at": "2999-01-01T00:00:00Z"},  # not yet
        {"aware_at": "2026-01-01T00:00:00Z", "occurred_at": "2026-01-02T00:00:00Z"},  # after it became known
        {"occurred_at": "2999-01-01T00:00:00Z"},
        {"data_categories": ["dna"]},
        {"subjects_estimate": -1},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"description": "a\u0000b"},
        {"aware_at": "yesterday"},
        {"status": "closed"},  # not the caller's to set
    ],
)
async def test_a_bad_registration_is_a_422_and_registers_nothing(client, db, fields):
    title = f"bad-{uuid.uuid4().hex}"
    body = {"title": title, "description": "d", **fields}
    assert_problem(await client.post("/v1/breaches", json=body, headers=MANAGER), 422)
    async with db() as session:
        assert (await session.execute(select(Breach).where(Breach.title == title))).first() is None


async def test_who_may_reach_the_register(client):
    processor = await make_processor(client)
    subject = await make_subject(client)
    breach = (await register(client))["id"]
    for headers in (
        staff("admin", "audit:read", "requests:manage"),
        as_subject(subject["id"]),
        as_processor(processor["id"]),
    ):
        assert_problem(await client.get(f"/v1/breaches/{breach}", headers=headers), 403)
        assert_problem(await client.get("/v1/breaches", headers=headers), 403)
        assert_problem(
            await client.post("/v1/breaches", json={"title": "t", "description": "d"}, headers=headers), 403
        )
    for headers in (MANAGER, as_subject(subject["id"])):
        assert_problem(
            await client.post("/v1/breach-reports", json={"title": "t", "description": "d"}, headers=headers),
            403,
        )
    assert_problem(await client.get("/v1/breaches"), 401)
    # A processor token for a processor that is not registered reports nothing.
    assert_problem(
        await client.post(
            "/v1/breach-reports", json={"title": "t", "description": "d"}, headers=as_processor(uuid.uuid4())
        ),
        404,
    )
    # A staff breach is nobody's report.
    assert_problem(
        await client.get(f"/v1/breach-reports/{breach}", headers=as_processor(processor["id"])), 404
    )


async def test_two_senders_at_once_mail_each_subject_once(app, client, mails, monkeypatch):
    monkeypatch.setattr(breaches, "SEND_BATCH", 2)  # small batches: the senders take turns
    processor = await make_processor(client)
    people = [await make_subject(client) for _ in range(7)]
    for person in people:
        await report_disclosure(client, processor["id"], person["id"], ["email"], "service")
    breach = (await register(client))["id"]
    await act(client, breach, **ASSESS_HIGH)
    query = {
        "source": "disclosures",
        "recipient_id": processor["id"],
        "from": iso(datetime.now(UTC) - timedelta(hours=1)),
        "until": iso(datetime.now(UTC) + timedelta(hours=1)),
    }
    await client.post(f"/v1/breaches/{breach}/subject-queries", json=query, headers=MANAGER)
    sessions = app.state.sessionmaker
    # Queued, but the senders are run here, side by side (not by the request's background task).
    async with unit_of_work(sessions) as session:
        run = await breaches.request_notifications(
            session,
            uuid.UUID(breach),
            breaches.BreachNotifySubjects.model_validate({"notice": NOTICE}),
            actor=breaches.SENDER,
        )
    assert run.queued == 7
    del mails[:]
    counts = await asyncio.gather(*(breaches.send_pending(sessions, uuid.UUID(breach)) for _ in range(3)))
    assert sum(counts) == 7
    assert sorted(m.to for m in mails) == sorted(p["email"] for p in people)


async def test_an_erased_subject_is_skipped_not_mailed(client, mails):
    from tests.support import complete_request

    processor = await make_processor(client)
    kept, gone = await make_subject(client), await make_subject(client)
    for person in (kept, gone):
        await report_disclosure(client, processor["id"], person["id"], ["email"], "service")
    await complete_request(client, gone["id"], "erasure")
    breach = (await register(client))["id"]
    await act(client, breach, **ASSESS_HIGH)
    query = {
        "source": "disclosures",
        "recipient_id": processor["id"],
        "from": iso(datetime.now(UTC) - timedelta(hours=1)),
        "until": iso(datetime.now(UTC) + timedelta(hours=1)),
    }
    await client.post(f"/v1/breaches/{breach}/subject-queries", json=query, headers=MANAGER)
    del mails[:]
    told = await client.post(
        f"/v1/breaches/{breach}/subject-notifications", json={"notice": NOTICE}, headers=MANAGER
    )
    assert told.status_code == 202
    assert [m.to for m in mails] == [kept["email"]]
    after = (await client.get(f"/v1/breaches/{breach}", headers=MANAGER)).json()["subjects"]
    assert after == {"affected": 2, "pending": 0, "sent": 1, "skipped": 1}


async def test_a_breach_is_kept_five_years_after_closing_then_swept(client, db):
    recent, old, still_open = (
        (await register(client))["id"],
        (await register(client))["id"],
        (await register(client))["id"],
    )
    for breach in (recent, old):
        await act(
            client,
            breach,
            **{**ASSESS_HIGH, "risk": "unlikely", "notify_imy": False, "notify_subjects": False},
        )
        await act(client, breach, action="record_no_notification")
        assert (await act(client, breach, action="close")).status_code == 200
    now = datetime.now(UTC)
    async with unit_of_work(
        db
    ) as session:  # closed long ago: five years and a day, and just under five years
        await session.execute(
            update(Breach)
            .where(Breach.id == uuid.UUID(old))
            .values(closed_at=now - timedelta(days=5 * 365 + 2))
        )
        await session.execute(
            update(Breach)
            .where(Breach.id == uuid.UUID(recent))
            .values(closed_at=now - timedelta(days=5 * 365 - 1))
        )
        await session.execute(
            update(Breach)
            .where(Breach.id == uuid.UUID(still_open))
            .values(created_at=now - timedelta(days=9 * 365))
        )
    run = await client.post("/v1/retention/runs", json={"dry_run": False}, headers=ADMIN)
    assert run.status_code == 202, run.text
    finished = (await client.get(f"/v1/retention/runs/{run.json()['id']}", headers=ADMIN)).json()
    assert finished["status"] == "completed", finished
    assert finished["report"]["purged"]["breaches"] >= 1
    assert_problem(await client.get(f"/v1/breaches/{old}", headers=MANAGER), 404)
    assert (await client.get(f"/v1/breaches/{recent}", headers=MANAGER)).status_code == 200
    assert (await client.get(f"/v1/breaches/{still_open}", headers=MANAGER)).status_code == 200


async def test_the_record_of_processings_csv_shows_the_breach_register(client):
    await register(client)
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()["breach_register"]
    as_csv = (await client.get("/v1/records-of-processing.csv", headers=ADMIN)).text
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    by_status = ", ".join(f"{s} {n}" for s, n in sorted(record["by_status"].items()))
    assert rows and {row["breach_register"] for row in rows} == {
        f"Register kept (Art. 33(5), GET /v1/breaches). {record['retention']} "
        f"Breaches held: {record['total']} ({by_status})."
    }
    assert record["by_status"]["open"] >= 1 and "5 years" in rows[0]["breach_register"]
