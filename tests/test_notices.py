"""Notices that reach people (GDPR Art. 13, 14): which notice version each subject was given, when and how;
who is owed one and its mailing; and what publishing a new version does (the webhook, the subjects it
concerns, consents due for renewal)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from app.core.time import add_months
from app.webhooks.models import OutboxEvent
from tests.support import ADMIN, as_subject, assert_problem, complete_request, make_subject, staff

READER, WRITER = staff("subjects:read"), staff("subjects:write")
CONSENTS = staff("consents:read", "consents:write")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def deliveries(client, subject_id: str, headers=READER) -> list[dict]:
    response = await client.get(f"/v1/subjects/{subject_id}/notice-deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def owed(client, subject_id: str, **params) -> list[dict]:
    response = await client.get(
        "/v1/notice-deliveries/due", params={"subject_id": subject_id, **params}, headers=READER
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def in_force(client) -> str:
    return (await client.get("/v1/policies/current")).json()["version"]


async def consent_purpose(client) -> str:
    code = f"notice_{uuid.uuid4().hex[:8]}"
    body = {
        "code": code,
        "name": {"sv": "Inbjudningar", "en": "Invitations"},
        "description": {"sv": "Inbjudningar till evenemang.", "en": "Invitations to events."},
        "legal_basis": "consent",
        "categories": ["email"],
        "retention": {
            "clock": "until_withdrawn",
            "action": "delete",
            "description": {"sv": "Tills samtycket återkallas", "en": "Until consent is withdrawn"},
        },
    }
    response = await client.post("/v1/purposes", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return code


def section(id_: str, text: str, purposes: list[str] | None = None) -> dict:
    found = {
        "id": id_,
        "title": {"sv": f"Avsnitt {id_}", "en": f"Section {id_}"},
        "body": {"sv": f"Text på svenska: {text}", "en": f"Text in English: {text}"},
    }
    return found | ({"purposes": purposes} if purposes is not None else {})


async def publish(client, sections: list[dict]) -> str:
    version = f"n-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/v1/policies", json={"version": version, "sections": sections}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return version


async def grant(client, subject_id: str, purpose: str, **fields) -> None:
    body = {"purpose": purpose, "status": "granted", "channel": "web", **fields}
    response = await client.post(f"/v1/subjects/{subject_id}/consents", json=body, headers=CONSENTS)
    assert response.status_code == 201, response.text


async def consent_state(client, subject_id: str) -> dict[str, dict]:
    response = await client.get(f"/v1/subjects/{subject_id}/consents", headers=CONSENTS)
    assert response.status_code == 200, response.text
    return {item["purpose"]: item for item in response.json()["items"]}


async def decision(client, subject_id: str, purpose: str) -> dict:
    response = await client.post(
        "/v1/decisions", json={"subject_id": subject_id, "purpose": purpose}, headers=staff("consents:read")
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- Art. 13: registering a subject records the notice given at collection ---------------------------------


@pytest.mark.parametrize("language", ["sv", "en"])
async def test_registration_records_the_notice_in_force_as_given_at_collection(client, language):
    version = await in_force(client)
    subject = await make_subject(client, notice_language=language)
    [given] = await deliveries(client, subject["id"])
    assert given["version"] == version and given["language"] == language
    assert given["method"] == "at_collection" and given["subject_id"] == subject["id"]
    assert ts(given["delivered_at"]) == ts(subject["created_at"])
    # The subject sees its own; nobody is owed anything.
    assert await deliveries(client, subject["id"], headers=as_subject(subject["id"])) == [given]
    assert await owed(client, subject["id"]) == []


async def test_notice_deliveries_are_reached_like_the_subject(client):
    subject, other = await make_subject(client), await make_subject(client)
    path = f"/v1/subjects/{subject['id']}/notice-deliveries"
    assert_problem(await client.get(path), 401)
    assert_problem(await client.get(path, headers=staff("consents:read")), 403)
    assert_problem(await client.get(path, headers=as_subject(other["id"])), 404)
    assert_problem(await client.get(f"/v1/subjects/{uuid.uuid4()}/notice-deliveries", headers=READER), 404)
    # Recording one is for staff who write subjects.
    body = {"method": "first_contact"}
    assert_problem(await client.post(path, json=body, headers=as_subject(subject["id"])), 403)
    assert_problem(await client.post(path, json=body, headers=READER), 403)
    assert_problem(await client.get("/v1/notice-deliveries/due", headers=as_subject(subject["id"])), 403)
    assert_problem(await client.post("/v1/notice-deliveries/due/mail", headers=READER), 403)


# --- Art. 14: data not from the subject: the notice is owed within one month ------------------------------


async def test_a_subject_from_a_public_register_is_owed_the_notice_within_one_month(client):
    subject = await make_subject(client, source="public_register")
    assert await deliveries(client, subject["id"]) == []
    [due] = await owed(client, subject["id"])
    assert due["reason"] == "not_from_subject" and due["version"] is None and due["overdue"] is False
    assert ts(due["due_at"]) == add_months(ts(subject["created_at"]), 1)
    assert await owed(client, subject["id"], overdue="true") == []  # not yet past due


async def test_the_due_list_pages_soonest_first_without_repeats(client):
    made = {(await make_subject(client, source="public_register"))["id"] for _ in range(3)}
    seen: list[tuple[str, str]] = []
    params: dict[str, str | int] = {"limit": 2}
    for _ in range(1000):
        response = await client.get("/v1/notice-deliveries/due", params=params, headers=READER)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [(item["due_at"], item["subject_id"]) for item in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    keys = [(ts(at), subject) for at, subject in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert made <= {subject for _, subject in seen}


@pytest.mark.parametrize(
    "source", ["direct", "website", "employee", "course_signup", "newsletter_signup", "survey", "contact"]
)
async def test_every_other_source_is_the_subject_itself(client, source):
    subject = await make_subject(client, source=source)
    assert [d["method"] for d in await deliveries(client, subject["id"])] == ["at_collection"]
    assert await owed(client, subject["id"]) == []


@pytest.mark.parametrize("language", ["sv", "en"])
async def test_staff_mail_the_notice_and_it_settles_what_was_owed(client, mails, language):
    subject = await make_subject(client, source="public_register")
    version = await in_force(client)
    response = await client.post(
        f"/v1/subjects/{subject['id']}/notice-deliveries",
        json={"method": "mail", "language": language},
        headers=WRITER,
    )
    assert response.status_code == 201, response.text
    given = response.json()
    assert given["method"] == "mail" and given["language"] == language and given["version"] == version
    assert response.headers["location"] == f"/v1/subjects/{subject['id']}/notice-deliveries/{given['id']}"
    again = await client.get(response.headers["location"], headers=READER)
    assert again.status_code == 200 and again.json() == given
    assert await owed(client, subject["id"]) == []
    [mail] = [m for m in mails if m.to == subject["email"]]
    assert f"/privacy-center/notice/{version}?lang={language}" in mail.body
    assert f"/privacy-center?lang={language}" in mail.body
    if language == "sv":
        assert mail.body.startswith("Hej!") and "offentligt register" in mail.body
    else:
        assert mail.body.startswith("Hello,") and "public register" in mail.body


async def test_staff_record_a_notice_given_at_the_first_contact(client, mails):
    subject = await make_subject(client, source="public_register")
    response = await client.post(
        f"/v1/subjects/{subject['id']}/notice-deliveries",
        json={"method": "first_contact", "language": "en", "version": "2026-11"},
        headers=WRITER,
    )
    assert response.status_code == 201, response.text
    assert response.json()["version"] == "2026-11" and response.json()["method"] == "first_contact"
    assert await owed(client, subject["id"]) == []
    assert [m for m in mails if m.to == subject["email"]] == []  # recorded, not mailed


@pytest.mark.parametrize(
    "body",
    [
        {"method": "at_collection"},  # registration records that one
        {"method": "mail", "version": "never-published"},
        {"method": "mail", "language": "de"},
        {"method": "mail", "language": None},
        {"method": "fax"},
        {"method": None},
        {},
        {"method": "mail", "extra": 1},
        {"method": "mail", "version": "../2026-11"},
        {"method": "mail", "version": ""},
    ],
)
async def test_a_bad_delivery_is_refused(client, mails, body):
    subject = await make_subject(client, source="public_register")
    assert_problem(
        await client.post(f"/v1/subjects/{subject['id']}/notice-deliveries", json=body, headers=WRITER), 422
    )
    assert await deliveries(client, subject["id"]) == []
    assert len(await owed(client, subject["id"])) == 1
    assert mails == []


async def test_the_mailing_sends_what_is_owed_in_bounded_batches(client, mails):
    subjects = [await make_subject(client, source="public_register") for _ in range(3)]
    english = await make_subject(client, source="public_register")
    await client.post(
        f"/v1/subjects/{english['id']}/notice-deliveries",
        json={"method": "first_contact", "language": "en"},
        headers=WRITER,
    )
    # Owed again (a new version concerning it): mailed in the language it was last given the notice in.
    purpose = await consent_purpose(client)
    await publish(client, [section("about", "general"), section("invitations", "first", [purpose])])
    await grant(client, english["id"], purpose)
    version = await publish(
        client, [section("about", "general"), section("invitations", "second", [purpose])]
    )
    assert [d["reason"] for d in await owed(client, english["id"])] == ["notice_changed"]

    batches = 0
    while True:
        response = await client.post("/v1/notice-deliveries/due/mail", params={"limit": 50}, headers=WRITER)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["mailed"] + result["skipped"] <= 50
        batches += 1
        if result["remaining"] == 0:
            break
        assert batches < 5000
    for subject in subjects:
        assert await owed(client, subject["id"]) == []
        [given] = [d for d in await deliveries(client, subject["id"]) if d["method"] == "mail"]
        assert given["language"] == "sv"
        [mail] = [m for m in mails if m.to == subject["email"]]
        assert "offentligt register" in mail.body
    [mail] = [m for m in mails if m.to == english["email"]]
    assert mail.subject == "We have updated our privacy notice" and f"/notice/{version}?lang=en" in mail.body
    assert [d["method"] for d in await deliveries(client, english["id"])] == ["mail", "first_contact"]


# --- publishing a new version -----------------------------------------------------------------------------


async def test_publishing_a_notice_emits_notice_published(client, db):
    purpose = await consent_purpose(client)
    first = await publish(client, [section("about", "general"), section("invitations", "first", [purpose])])
    second = await publish(client, [section("about", "general"), section("invitations", "second", [purpose])])
    async with db() as session:
        events = (
            (
                await session.execute(
                    select(OutboxEvent)
                    .where(OutboxEvent.type == "notice.published")
                    .order_by(OutboxEvent.created_at)
                )
            )
            .scalars()
            .all()
        )
    payload = next(e.payload for e in events if e.payload["version"] == second)
    assert payload["previous_version"] == first
    assert payload["changed_sections"] == ["invitations"]
    assert payload["renewal_due_purposes"] == [purpose]
    # Payload timestamps end in Z, as the REST API's do (issue 15): not Python's +00:00.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", payload["effective_from"]), payload
    # Staff subscribe to it like to any other event.
    endpoint = {"url": "https://93.184.216.34/notices", "event_types": ["notice.published"]}
    created = await client.post("/v1/webhook-endpoints", json=endpoint, headers=ADMIN)
    assert created.status_code == 201, created.text


async def test_a_section_must_name_known_purposes(client):
    body = {"version": f"n-{uuid.uuid4().hex[:8]}", "sections": [section("x", "y", ["no_such_purpose"])]}
    assert_problem(await client.post("/v1/policies", json=body, headers=ADMIN), 422)
    for bad in (["Bad Code"], "newsletter", [None], [1]):
        body = {"version": f"n-{uuid.uuid4().hex[:8]}", "sections": [section("x", "y") | {"purposes": bad}]}
        assert_problem(await client.post("/v1/policies", json=body, headers=ADMIN), 422)


async def test_a_changed_purpose_text_makes_consents_given_before_due_for_renewal(client):
    changed, unchanged = await consent_purpose(client), await consent_purpose(client)
    await publish(
        client,
        [section("about", "general"), section("a", "first", [changed]), section("b", "same", [unchanged])],
    )
    subject = await make_subject(client)
    await grant(client, subject["id"], changed)
    await grant(client, subject["id"], unchanged)
    state = await consent_state(client, subject["id"])
    assert not state[changed]["renewal_due"] and not state[unchanged]["renewal_due"]
    assert (await decision(client, subject["id"], changed))["reasons"] == ["consent_granted"]

    await publish(
        client,
        [section("about", "general"), section("a", "reworded", [changed]), section("b", "same", [unchanged])],
    )
    state = await consent_state(client, subject["id"])
    assert (
        state[changed]["renewal_due"] is True and state[changed]["status"] == "granted"
    )  # nothing withdrawn
    assert state[unchanged]["renewal_due"] is False
    answer = await decision(client, subject["id"], changed)
    assert answer["allowed"] is True and answer["reasons"] == ["consent_granted", "renewal_due"]
    assert (await decision(client, subject["id"], unchanged))["reasons"] == ["consent_granted"]
    batch = await client.post(
        "/v1/decisions/batch",
        headers=staff("consents:read"),
        json={
            "items": [
                {"subject_id": subject["id"], "purpose": changed},
                {"subject_id": subject["id"], "purpose": unchanged},
            ]
        },
    )
    assert [r["reasons"] for r in batch.json()["results"]] == [
        ["consent_granted", "renewal_due"],
        ["consent_granted"],
    ]

    # Consent given again under the version in force: renewed.
    await grant(client, subject["id"], changed)
    assert (await consent_state(client, subject["id"]))[changed]["renewal_due"] is False
    assert (await decision(client, subject["id"], changed))["reasons"] == ["consent_granted"]


async def test_a_withdrawn_consent_is_never_due_for_renewal(client):
    purpose = await consent_purpose(client)
    await publish(client, [section("a", "first", [purpose])])
    subject = await make_subject(client)
    await grant(client, subject["id"], purpose)
    await client.delete(f"/v1/subjects/{subject['id']}/consents/{purpose}", headers=CONSENTS)
    await publish(client, [section("a", "second", [purpose])])
    assert (await consent_state(client, subject["id"]))[purpose]["renewal_due"] is False


async def test_a_changed_section_owes_the_new_version_to_the_subjects_it_concerns(client):
    purpose, other = await consent_purpose(client), await consent_purpose(client)
    await publish(
        client,
        [section("about", "general"), section("a", "first", [purpose]), section("b", "first", [other])],
    )
    consented, holder, bystander = (
        await make_subject(client),
        await make_subject(client),
        await make_subject(client),
    )
    await grant(client, consented["id"], purpose)
    await grant(client, bystander["id"], other)
    item = {
        "category": "email",
        "value": f"held.{uuid.uuid4().hex[:8]}@example.se",
        "source": "direct",
        "purpose": purpose,
    }
    added = await client.post(f"/v1/subjects/{holder['id']}/data", json=item, headers=WRITER)
    assert added.status_code == 201, added.text

    version = await publish(
        client,
        [section("about", "general"), section("a", "second", [purpose]), section("b", "first", [other])],
    )
    for subject in (consented, holder):
        [due] = await owed(client, subject["id"])
        assert due["reason"] == "notice_changed" and due["version"] == version
    assert await owed(client, bystander["id"]) == []

    # A section naming no purpose concerns everyone.
    general = await publish(
        client,
        [section("about", "reworded"), section("a", "second", [purpose]), section("b", "first", [other])],
    )
    [due] = await owed(client, bystander["id"])
    assert due["version"] == general
    [due] = await owed(client, consented["id"])
    assert due["version"] == general  # one notice owed, of the newest version


async def test_an_unchanged_republication_owes_nobody(client):
    purpose = await consent_purpose(client)
    sections = [section("about", "general"), section("a", "first", [purpose])]
    await publish(client, sections)
    subject = await make_subject(client)
    await grant(client, subject["id"], purpose)
    await publish(client, sections)
    assert await owed(client, subject["id"]) == []
    assert (await consent_state(client, subject["id"]))[purpose]["renewal_due"] is False


async def test_the_access_package_lists_the_notices_given(client):
    subject = await make_subject(client)
    version = await in_force(client)
    request = await complete_request(client, subject["id"], "access")
    package = await client.get(
        f"/v1/rights-requests/{request['id']}/package", headers=as_subject(subject["id"])
    )
    assert package.status_code == 200, package.text
    [given] = package.json()["notices"]
    assert given["version"] == version and given["method"] == "at_collection"


async def test_the_command_line_mails_everything_owed(client, db, mails):
    from app.auth.principals import Principal
    from app.notices import service as notices

    subjects = [await make_subject(client, source="public_register") for _ in range(3)]
    result = await notices.mail_all_owed(db, batch=2, actor=Principal.system("test"))
    assert result.remaining == 0 and result.mailed >= 3
    for subject in subjects:
        assert await owed(client, subject["id"]) == []
        assert [m.to for m in mails].count(subject["email"]) == 1
    again = await notices.mail_all_owed(db, batch=2, actor=Principal.system("test"))
    assert again.mailed == 0 and again.remaining == 0
