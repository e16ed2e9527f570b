"""Marketing: channel preferences, opt-outs by contact (kept as keyed hashes), the batch check, unsubscribe."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, select

from app.core.contacts import normalize_phone
from app.marketing.models import ContactOptOut
from app.marketing.schemas import CheckResponse
from app.subjects.models import Subject, SubjectContact
from app.webhooks.models import OutboxEvent
from tests.support import add_item, as_subject, assert_problem, make_subject, staff, unique_email

WRITER = staff("consents:write", "consents:read")
READER = staff("consents:read")


@pytest.mark.parametrize(("raw", "e164"), [
    ("070-123 45 67", "+46701234567"), ("+46 70 123 45 67", "+46701234567"), ("0046701234567", "+46701234567"),
    ("+46 (0)70-123 45 67", "+46701234567"), ("08-123 456 78", "+46812345678"), ("+1 (415) 555-0100", "+14155550100"),
    ("12", None), ("not a number", None), ("+0123456789", None),
])
def test_phone_numbers_normalize_to_e164(raw, e164):
    assert normalize_phone(raw) == e164


def unique_phone() -> tuple[str, str]:
    """A mobile number no earlier run used, national and E.164: (070-123 45 67, +46701234567)."""
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    return f"070-{digits[:3]} {digits[3:5]} {digits[5:]}", f"+4670{digits}"


async def marketing_subject(client, *, consent: str | None = "granted", phone: str | None = None) -> dict:
    subject = await make_subject(client)
    if consent:
        response = await client.post(f"/v1/subjects/{subject['id']}/consents", headers=WRITER,
                                     json={"purpose": "marketing", "status": consent, "channel": "crm"})
        assert response.status_code == 201
    if phone:
        item = await add_item(client, subject["id"], category="phone", value=phone, purpose="marketing")
        # A number recorded for a subject is its own for marketing once verified (issue 17, item 1).
        verified = await client.post(f"/v1/subjects/{subject['id']}/marketing/contacts/{item['id']}/verification",
                                     json={"reason": "Confirmed by the customer on the phone"}, headers=WRITER)
        assert verified.status_code == 200, verified.text
    return subject


async def check(client, *contacts: dict) -> list[dict]:
    response = await client.post("/v1/marketing/check", json={"contacts": list(contacts)}, headers=READER)
    assert response.status_code == 200, response.text
    # Built from answers serialized once: still exactly the documented body.
    assert response.headers["content-type"] == "application/json"
    assert CheckResponse.model_validate_json(response.content).model_dump(mode="json") == response.json()
    return response.json()["results"]


async def test_channels_default_to_allowed_and_opt_outs_show(client):
    subject = await marketing_subject(client)
    url = f"/v1/subjects/{subject['id']}/marketing"
    assert (await client.get(url, headers=READER)).json() == {
        "channels": {"email": "allowed", "sms": "allowed", "phone": "allowed", "post": "allowed"}}
    updated = await client.put(url, json={"channels": {"email": "opted_out", "post": "opted_out"}}, headers=WRITER)
    assert updated.json()["channels"] == {"email": "opted_out", "sms": "allowed", "phone": "allowed",
                                          "post": "opted_out"}
    assert (await client.get(url, headers=as_subject(subject["id"]))).json() == updated.json()


async def test_only_the_subject_lifts_an_opt_out(client):
    subject = await marketing_subject(client)
    url = f"/v1/subjects/{subject['id']}/marketing"
    await client.put(url, json={"channels": {"email": "opted_out"}}, headers=WRITER)
    assert_problem(await client.put(url, json={"channels": {"email": "allowed"}}, headers=WRITER), 409)
    assert (await check(client, {"email": subject["email"], "channel": "email"}))[0]["reason"] == "opted_out"
    lifted = await client.put(url, json={"channels": {"email": "allowed"}}, headers=as_subject(subject["id"]))
    assert lifted.json()["channels"]["email"] == "allowed"
    assert (await check(client, {"email": subject["email"], "channel": "email"}))[0] == {
        "allowed": True, "reason": "consent_granted"}


async def test_the_check_follows_the_rule(client, db):
    granted = await marketing_subject(client)
    withdrawn = await marketing_subject(client, consent="withdrawn")
    never = await marketing_subject(client, consent=None)
    restricted = await marketing_subject(client)
    async with db() as session:
        (await session.get(Subject, uuid.UUID(restricted["id"]))).status = "restricted"
        await session.commit()
    results = await check(
        client,
        {"email": granted["email"].upper(), "channel": "email"},  # matched case-insensitively
        {"email": withdrawn["email"], "channel": "email"},
        {"email": never["email"], "channel": "post"},
        {"email": restricted["email"], "channel": "email"},
        {"email": unique_email("stranger"), "channel": "email"},
        {"channel": "sms"},
        {"phone": "12", "channel": "sms"},
    )
    assert [(r["allowed"], r["reason"]) for r in results] == [
        (True, "consent_granted"), (False, "consent_withdrawn"), (False, "no_consent"),
        (False, "subject_restricted"), (False, "not_a_subject"), (False, "invalid_contact"),
        (False, "invalid_contact")]


async def test_phone_contacts_match_whatever_their_format(client):
    national, e164 = unique_phone()
    subject = await marketing_subject(client, phone=national)
    [result] = await check(client, {"phone": e164, "channel": "sms"})
    assert result == {"allowed": True, "reason": "consent_granted"}
    opted = await client.post("/v1/marketing/opt-outs", json={"phone": "00" + e164[1:3] + " " + e164[3:],
                                                               "channel": "sms"}, headers=WRITER)
    assert opted.status_code == 201
    results = await check(client, {"phone": national.replace(" ", ""), "channel": "sms"},
                          {"phone": national.replace("-", " "), "channel": "phone"},
                          {"email": subject["email"], "channel": "email"})
    assert [r["reason"] for r in results] == ["opted_out", "consent_granted", "consent_granted"]
    channels = (await client.get(f"/v1/subjects/{subject['id']}/marketing", headers=READER)).json()["channels"]
    assert channels["sms"] == "opted_out" and channels["phone"] == "allowed"


async def test_opt_outs_for_non_subjects_are_kept_as_hashes_only(client, db):
    email = unique_email("nobody")
    response = await client.post("/v1/marketing/opt-outs", json={"email": email, "channel": "all"}, headers=WRITER)
    assert response.status_code == 201
    [row] = response.json()["items"]
    assert row["kind"] == "email" and row["channel"] == "all"
    assert (await check(client, {"email": email, "channel": "post"}))[0]["reason"] == "opted_out"
    again = await client.post("/v1/marketing/opt-outs", json={"email": email.upper(), "channel": "all"},
                              headers=WRITER)
    assert again.json()["items"][0]["id"] == row["id"]  # the same opt-out, not a second one
    async with db() as session:
        stored = await session.get(ContactOptOut, uuid.UUID(row["id"]))
    assert email not in stored.contact_hash and len(stored.contact_hash) == 64
    assert_problem(await client.post("/v1/marketing/opt-outs", json={"channel": "all"}, headers=WRITER), 422)
    assert_problem(await client.post("/v1/marketing/opt-outs", json={"phone": "abc", "channel": "sms"},
                                     headers=WRITER), 422)
    assert_problem(await client.post("/v1/marketing/opt-outs", json={"email": email, "channel": "all"},
                                     headers=READER), 403)


async def test_an_opt_out_outlives_the_erasure_of_the_subject(client, db):
    national, e164 = unique_phone()
    subject = await marketing_subject(client, phone=national)
    await client.put(f"/v1/subjects/{subject['id']}/marketing", json={"channels": {"email": "opted_out",
                                                                                   "sms": "opted_out"}},
                     headers=WRITER)
    # What erasure leaves: no address, no contacts, status erased.
    async with db() as session:
        row = await session.get(Subject, uuid.UUID(subject["id"]))
        row.status, row.email, row.email_hash = "erased", None, None
        await session.execute(delete(SubjectContact).where(SubjectContact.subject_id == row.id))
        await session.commit()
    results = await check(client, {"email": subject["email"], "channel": "email"},
                          {"phone": e164, "channel": "sms"},
                          {"phone": e164, "channel": "phone"})
    assert [r["reason"] for r in results] == ["opted_out", "opted_out", "not_a_subject"]


async def test_an_all_opt_out_lifted_for_one_channel_keeps_the_others(client):
    national, _ = unique_phone()
    subject = await marketing_subject(client, phone=national)
    await client.post("/v1/marketing/opt-outs", json={"email": subject["email"], "phone": national,
                                                      "channel": "all"}, headers=WRITER)
    url = f"/v1/subjects/{subject['id']}/marketing"
    assert set((await client.get(url, headers=READER)).json()["channels"].values()) == {"opted_out", "allowed"}
    lifted = await client.put(url, json={"channels": {"email": "allowed"}}, headers=as_subject(subject["id"]))
    assert lifted.json()["channels"]["email"] == "allowed" and lifted.json()["channels"]["sms"] == "opted_out"
    results = await check(client, {"email": subject["email"], "channel": "email"},
                          {"phone": national, "channel": "sms"})
    assert [r["reason"] for r in results] == ["consent_granted", "opted_out"]


async def test_batch_check_keeps_order_and_limits(client):
    granted = await marketing_subject(client)
    contacts = [{"email": granted["email"] if i % 2 else unique_email(), "channel": "email"} for i in range(1000)]
    results = await check(client, *contacts)
    assert [r["allowed"] for r in results] == [bool(i % 2) for i in range(1000)]
    assert results[:2] == [{"allowed": False, "reason": "not_a_subject"}, {"allowed": True, "reason": "consent_granted"}]
    too_many = await client.post("/v1/marketing/check", json={"contacts": contacts + contacts[:1]}, headers=READER)
    assert_problem(too_many, 422)
    assert_problem(await client.post("/v1/marketing/check", json={"contacts": contacts[:1]},
                                     headers=as_subject(granted["id"])), 403)


async def test_one_click_unsubscribe(client):
    subject = await marketing_subject(client)
    link = (await client.post("/v1/marketing/unsubscribe-links", json={"email": subject["email"]},
                              headers=READER)).json()
    assert link["url"].endswith(link["token"]) and subject["email"] not in link["url"]
    page = await client.get("/v1/marketing/unsubscribe", params={"token": link["token"]})
    assert page.status_code == 200 and "One-Click" in page.text
    # Opening the link changes nothing (mail scanners open links).
    assert (await check(client, {"email": subject["email"], "channel": "email"}))[0]["allowed"] is True
    assert_problem(await client.post("/v1/marketing/unsubscribe", params={"token": link["token"]}), 422)
    done = await client.post("/v1/marketing/unsubscribe", params={"token": link["token"]},
                             data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and done.headers["content-type"].startswith("text/html")
    assert (await check(client, {"email": subject["email"], "channel": "email"}))[0]["reason"] == "opted_out"
    forged = link["token"][:-3] + ("abc" if not link["token"].endswith("abc") else "xyz")
    assert_problem(await client.post("/v1/marketing/unsubscribe", params={"token": forged},
                                     data={"List-Unsubscribe": "One-Click"}), 404)


async def test_opt_outs_reach_the_outbox(client, db):
    subject = await marketing_subject(client)
    await client.put(f"/v1/subjects/{subject['id']}/marketing", json={"channels": {"sms": "opted_out"}},
                     headers=WRITER)
    await client.post("/v1/marketing/opt-outs", json={"email": subject["email"], "channel": "email"}, headers=WRITER)
    async with db() as session:
        types = (await session.execute(select(OutboxEvent.type, OutboxEvent.payload).where(
            OutboxEvent.subject_id == uuid.UUID(subject["id"])).order_by(OutboxEvent.created_at))).all()
    assert [(t, p.get("channel")) for t, p in types if t.startswith("marketing")] == [
        ("marketing.opted_out", "sms"), ("marketing.opted_out", "email")]
