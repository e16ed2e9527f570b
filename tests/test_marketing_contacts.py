"""Whose contact is it? A contact (an e-mail or phone item) counts as a subject's own for marketing only once
it is verified: by a code sent to it, by staff with a reason, or by the login code (the registered address).
Issue 17, item 1 (a subject lifting other people's opt-outs) and item 7 (replayed unsubscribe links)."""

from __future__ import annotations

import random
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.core.mail import Mail
from app.main import create_app
from app.marketing.service import _answer, _Facts
from app.subjects.models import SubjectContact
from app.webhooks.models import OutboxEvent
from tests.support import (
    STAFF_ALL,
    add_item,
    app_settings,
    as_subject,
    assert_problem,
    make_subject,
    unique_email,
)
from tests.test_marketing import READER, WRITER, check, unique_phone


def browser(application, address: str | None = None) -> httpx.AsyncClient:
    """A client of its own address (192.0.2.128/25 is this module's): the code limits count per address, in
    the shared database."""
    address = address or f"192.0.2.{random.randint(128, 254)}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application, client=(address, 1)), base_url="http://t"
    )


async def grant_marketing(client, subject_id: str, headers: dict) -> None:
    response = await client.post(
        f"/v1/subjects/{subject_id}/consents",
        headers=headers,
        json={"purpose": "marketing", "status": "granted", "channel": "web"},
    )
    assert response.status_code == 201, response.text


async def own_item(client, subject_id: str, category: str, value: str) -> dict:
    """An item the subject records itself, as the privacy center or the website would."""
    response = await client.post(
        f"/v1/subjects/{subject_id}/data",
        headers=as_subject(subject_id),
        json={"category": category, "value": value, "source": "website", "purpose": "marketing"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def unsubscribe_by_link(client, email: str) -> None:
    link = (
        await client.post("/v1/marketing/unsubscribe-links", json={"email": email}, headers=READER)
    ).json()
    done = await client.post(
        "/v1/marketing/unsubscribe", params={"token": link["token"]}, data={"List-Unsubscribe": "One-Click"}
    )
    assert done.status_code == 200


# --- item 1: the reproduction -------------------------------------------------------------------------------


@pytest.mark.parametrize("victims_registered", [True, False], ids=["subjects", "not-subjects"])
async def test_a_subject_cannot_lift_other_peoples_opt_outs(client, victims_registered):
    """Carla unsubscribed by link, Dan was opted out by staff for `all`; Mallory records their addresses as
    her own, looks, lifts and grants: the check still says opted_out, and her view never showed their
    opt-outs."""
    carla, dan, dan_phone = unique_email("carla"), unique_email("dan"), unique_phone()[0]
    if victims_registered:
        for email in (carla, dan):
            victim = await make_subject(client, email=email)
            await grant_marketing(client, victim["id"], WRITER)
    await unsubscribe_by_link(client, carla)
    opted = await client.post(
        "/v1/marketing/opt-outs", headers=WRITER, json={"email": dan, "phone": dan_phone, "channel": "all"}
    )
    assert opted.status_code == 201
    before = await check(
        client,
        {"email": carla, "channel": "email"},
        {"email": dan, "channel": "email"},
        {"phone": dan_phone, "channel": "sms"},
    )
    assert [r["reason"] for r in before] == ["opted_out"] * 3

    mallory = await make_subject(client, email=unique_email("mallory"))
    url, me = f"/v1/subjects/{mallory['id']}/marketing", as_subject(mallory["id"])
    for category, value in (("email", carla), ("email", dan), ("phone", dan_phone)):
        await own_item(client, mallory["id"], category, value)
    view = await client.get(url, headers=me)
    assert view.json()["channels"] == {
        "email": "allowed",
        "sms": "allowed",
        "phone": "allowed",
        "post": "allowed",
    }
    lifted = await client.put(url, headers=me, json={"channels": {"email": "allowed", "sms": "allowed"}})
    assert lifted.status_code == 200 and set(lifted.json()["channels"].values()) == {"allowed"}
    await grant_marketing(client, mallory["id"], me)

    after = await check(
        client,
        {"email": carla, "channel": "email"},
        {"email": dan, "channel": "email"},
        {"phone": dan_phone, "channel": "sms"},
        {"email": mallory["email"], "channel": "email"},
    )
    assert [r["reason"] for r in after] == ["opted_out", "opted_out", "opted_out", "consent_granted"]
    # Staff, who see every claim, are not shown the victims' opt-outs through Mallory either.
    assert (await client.get(url, headers=READER)).json() == view.json()


async def test_a_claimed_address_that_is_not_verified_is_nobodys(client):
    """Without any opt-out: Mallory's claim to a stranger's address opts nobody in; the newest claim does not
    override an earlier owner's withdrawal either."""
    stranger = unique_email("stranger")
    withdrew = await make_subject(client)
    await client.post(
        f"/v1/subjects/{withdrew['id']}/consents",
        headers=WRITER,
        json={"purpose": "marketing", "status": "withdrawn", "channel": "crm"},
    )
    mallory = await make_subject(client)
    for address in (stranger, withdrew["email"]):
        await own_item(client, mallory["id"], "email", address)
    await grant_marketing(client, mallory["id"], as_subject(mallory["id"]))
    results = await check(
        client, {"email": stranger, "channel": "email"}, {"email": withdrew["email"], "channel": "email"}
    )
    assert [(r["allowed"], r["reason"]) for r in results] == [
        (False, "unverified_contact"),
        (False, "consent_withdrawn"),
    ]


# --- item 1: verifying a contact ----------------------------------------------------------------------------


def code_in(mail: Mail) -> str:
    return re.search(r"\b(\d{6})\b", mail.body).group(1)


async def test_a_subject_verifies_its_address_by_a_code_and_may_then_lift(app, client, mails):
    subject = await make_subject(client)
    second = unique_email("second")
    await unsubscribe_by_link(client, second)
    item = await own_item(client, subject["id"], "email", second)
    me = as_subject(subject["id"])
    contact_url = f"/v1/subjects/{subject['id']}/marketing/contacts/{item['id']}"
    assert (await client.get(contact_url, headers=me)).json() == {
        "item_id": item["id"],
        "kind": "email",
        "verified": False,
        "verified_at": None,
        "verified_by": None,
    }
    async with browser(app) as own:
        sent = await own.post(f"{contact_url}/code", headers=me)
        assert sent.status_code == 202, sent.text
        [mail] = mails
        assert mail.to == second and "WeSafe" in mail.body
        wrong = "000000" if code_in(mail) != "000000" else "111111"
        refused = assert_problem(
            await own.post(f"{contact_url}/verification", headers=me, json={"code": wrong}), 422
        )
        assert "code" in refused["detail"]
        done = await own.post(f"{contact_url}/verification", headers=me, json={"code": code_in(mail)})
    assert done.status_code == 200, done.text
    assert done.json()["verified"] is True and done.json()["verified_by"] == "code"
    # Now the opt-out on it shows, and the subject may lift it.
    url = f"/v1/subjects/{subject['id']}/marketing"
    assert (await client.get(url, headers=me)).json()["channels"]["email"] == "opted_out"
    await grant_marketing(client, subject["id"], me)
    assert (await client.put(url, headers=me, json={"channels": {"email": "allowed"}})).status_code == 200
    assert (await check(client, {"email": second, "channel": "email"}))[0]["reason"] == "consent_granted"


async def test_a_code_is_good_once_for_its_own_subject_and_item(app, client, mails):
    shared = unique_email("shared")
    alice, mallory = await make_subject(client), await make_subject(client)
    alice_item = await own_item(client, alice["id"], "email", shared)
    mallory_item = await own_item(client, mallory["id"], "email", shared)
    async with browser(app) as own:
        sent = await own.post(
            f"/v1/subjects/{alice['id']}/marketing/contacts/{alice_item['id']}/code",
            headers=as_subject(alice["id"]),
        )
        assert sent.status_code == 202
        code = code_in(mails[-1])
        # Alice's code does not verify Mallory's claim to the same address.
        stolen = await own.post(
            f"/v1/subjects/{mallory['id']}/marketing/contacts/{mallory_item['id']}/verification",
            headers=as_subject(mallory["id"]),
            json={"code": code},
        )
        assert_problem(stolen, 422)
        base = f"/v1/subjects/{alice['id']}/marketing/contacts/{alice_item['id']}"
        # Presented by the wrong subject, the code is used up: Alice asks for another, which works once.
        assert_problem(
            await own.post(f"{base}/verification", headers=as_subject(alice["id"]), json={"code": code}), 422
        )
        assert (await own.post(f"{base}/code", headers=as_subject(alice["id"]))).status_code == 202
        fresh = code_in(mails[-1])
        done = await own.post(f"{base}/verification", headers=as_subject(alice["id"]), json={"code": fresh})
        assert done.status_code == 200 and done.json()["verified_by"] == "code"
        again = await own.post(f"{base}/verification", headers=as_subject(alice["id"]), json={"code": fresh})
        assert_problem(again, 409)
    # Mallory's claim stays unverified.
    mine = await client.get(
        f"/v1/subjects/{mallory['id']}/marketing/contacts/{mallory_item['id']}", headers=READER
    )
    assert mine.json()["verified"] is False


async def test_staff_verify_a_contact_with_a_reason_and_it_is_audited(client, db):
    national, e164 = unique_phone()
    subject = await make_subject(client)
    await grant_marketing(client, subject["id"], WRITER)
    item = await add_item(client, subject["id"], category="phone", value=national, purpose="marketing")
    assert (await check(client, {"phone": e164, "channel": "sms"}))[0]["reason"] == "unverified_contact"
    url = f"/v1/subjects/{subject['id']}/marketing/contacts/{item['id']}/verification"
    # The subject cannot verify by saying so; a reader cannot; a phone number has no code to send.
    assert_problem(await client.post(url, headers=as_subject(subject["id"]), json={"reason": "mine"}), 403)
    assert_problem(await client.post(url, headers=READER, json={"reason": "called"}), 403)
    assert_problem(await client.post(f"{url.removesuffix('/verification')}/code", headers=WRITER), 409)
    for body in (
        {},
        {"reason": ""},
        {"reason": "checked", "code": "123456"},
        {"reason": "x" * 201},
        {"code": "12ab56"},
    ):
        assert_problem(await client.post(url, headers=WRITER, json=body), 422)
    done = await client.post(url, headers=WRITER, json={"reason": "Confirmed by phone call, ticket 4711"})
    assert done.status_code == 200, done.text
    assert done.json()["verified"] is True and done.json()["verified_by"] == "staff"
    assert (await check(client, {"phone": e164, "channel": "sms"}))[0]["reason"] == "consent_granted"
    async with db() as session:
        row = (
            await session.execute(
                select(SubjectContact).where(SubjectContact.item_id == uuid.UUID(item["id"]))
            )
        ).scalar_one()
        audited = (
            (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.subject_id == uuid.UUID(subject["id"]),
                        AuditEvent.action == "marketing.contact_verified",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert row.verified_reason == "Confirmed by phone call, ticket 4711"
    assert [(e.actor, e.target) for e in audited] == [("tester", item["id"])]
    # Rectified to another number, it is a new contact: not verified any more.
    other, _ = unique_phone()
    await client.patch(
        f"/v1/subjects/{subject['id']}/data/{item['id']}", headers=STAFF_ALL, json={"value": other}
    )
    assert (await client.get(url.removesuffix("/verification"), headers=READER)).json()["verified"] is False


async def test_contacts_out_of_reach_or_not_contacts(client):
    subject, other = await make_subject(client), await make_subject(client)
    name = await add_item(client, subject["id"], category="name", value="Anna", purpose="service")
    bad = await add_item(client, subject["id"], category="phone", value="not a number", purpose="service")
    base = f"/v1/subjects/{subject['id']}/marketing/contacts"
    for item_id in (name["id"], bad["id"]):
        assert_problem(await client.get(f"{base}/{item_id}", headers=READER), 404)
        assert_problem(
            await client.post(f"{base}/{item_id}/verification", headers=WRITER, json={"reason": "checked"}),
            404,
        )
    item = await add_item(client, subject["id"], category="email", value=unique_email(), purpose="service")
    assert_problem(await client.get(f"{base}/{item['id']}", headers=as_subject(other["id"])), 404)
    assert_problem(await client.post(f"{base}/{item['id']}/code", headers=as_subject(other["id"])), 404)
    assert_problem(await client.get(f"{base}/{uuid.uuid4()}", headers=READER), 404)
    assert_problem(await client.get(f"{base}/not-a-uuid", headers=READER), 422)


async def test_the_address_proven_at_login_counts_as_verified(app, client, db, mails):
    subject = await make_subject(client)
    async with browser(app) as own:
        assert (await own.post("/v1/auth/subject-login", json={"email": subject["email"]})).status_code == 202
        verified = await own.post(
            "/v1/auth/subject-login/verify", json={"email": subject["email"], "code": code_in(mails[-1])}
        )
    assert verified.status_code == 200
    async with db() as session:
        row = (
            await session.execute(
                select(SubjectContact).where(
                    SubjectContact.subject_id == uuid.UUID(subject["id"]), SubjectContact.item_id.is_(None)
                )
            )
        ).scalar_one()
    assert row.verified_by == "login" and row.verified_at is not None


# --- item 1: several owners ---------------------------------------------------------------------------------


async def test_owners_who_disagree_are_a_conflict(client):
    """A family address, verified by two subjects: both must agree, or the check refuses (`conflict`)."""
    family = unique_email("family")
    first, second = await make_subject(client), await make_subject(client)
    for subject, status in ((first, "granted"), (second, "withdrawn")):
        item = await add_item(client, subject["id"], category="email", value=family, purpose="marketing")
        await client.post(
            f"/v1/subjects/{subject['id']}/consents",
            headers=WRITER,
            json={"purpose": "marketing", "status": status, "channel": "crm"},
        )
        verified = await client.post(
            f"/v1/subjects/{subject['id']}/marketing/contacts/{item['id']}/verification",
            headers=WRITER,
            json={"reason": "Both confirmed at the counter"},
        )
        assert verified.status_code == 200
    assert (await check(client, {"email": family, "channel": "email"}))[0] == {
        "allowed": False,
        "reason": "conflict",
    }
    await client.post(
        f"/v1/subjects/{second['id']}/consents",
        headers=WRITER,
        json={"purpose": "marketing", "status": "granted", "channel": "crm"},
    )
    assert (await check(client, {"email": family, "channel": "email"}))[0] == {
        "allowed": True,
        "reason": "consent_granted",
    }
    await client.put(
        f"/v1/subjects/{first['id']}/marketing", headers=WRITER, json={"channels": {"email": "opted_out"}}
    )
    assert (await check(client, {"email": family, "channel": "email"}))[0]["reason"] == "opted_out"


# --- item 7: replayed unsubscribe links ---------------------------------------------------------------------


async def unsubscriptions_audited(session, subject_id: str) -> int:
    """How many marketing.unsubscribed audit events the subject has."""
    return await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.subject_id == uuid.UUID(subject_id),
            AuditEvent.action == "marketing.unsubscribed",
        )
    )


async def test_replaying_an_unsubscribe_link_announces_it_once(client, db):
    subject = await make_subject(client)
    link = (
        await client.post("/v1/marketing/unsubscribe-links", json={"email": subject["email"]}, headers=READER)
    ).json()
    pages = set()
    for _ in range(20):
        done = await client.post(
            "/v1/marketing/unsubscribe",
            params={"token": link["token"]},
            data={"List-Unsubscribe": "One-Click"},
        )
        assert done.status_code == 200
        pages.add(done.text)
    assert len(pages) == 1
    async with db() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.subject_id == uuid.UUID(subject["id"]), OutboxEvent.type == "marketing.opted_out"
            )
        )
        audited = await unsubscriptions_audited(session, subject["id"])
    assert (events, audited) == (1, 1)


async def test_an_address_already_opted_out_of_everything_announces_nothing(client, db):
    subject = await make_subject(client)
    await client.post(
        "/v1/marketing/opt-outs", json={"email": subject["email"], "channel": "all"}, headers=WRITER
    )
    await unsubscribe_by_link(client, subject["email"])
    async with db() as session:
        audited = await unsubscriptions_audited(session, subject["id"])
    assert audited == 0


@pytest.fixture(scope="module")
async def limited_app(database_url):
    application = create_app(
        app_settings(database_url=database_url, log_level="WARNING", unsubscribe_rate_limit="3/minute")
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_the_unsubscribe_endpoint_is_rate_limited_per_address(limited_app, client):
    link = (
        await client.post("/v1/marketing/unsubscribe-links", json={"email": unique_email()}, headers=READER)
    ).json()
    params, form = {"token": link["token"]}, {"List-Unsubscribe": "One-Click"}
    async with browser(limited_app, "192.0.2.130") as flooder, browser(limited_app, "192.0.2.131") as other:
        answers = [
            (await flooder.post("/v1/marketing/unsubscribe", params=params, data=form)).status_code
            for _ in range(3)
        ]
        assert answers == [200, 200, 200]
        refused = await flooder.post("/v1/marketing/unsubscribe", params=params, data=form)
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await other.post("/v1/marketing/unsubscribe", params=params, data=form)).status_code == 200


# --- the owner rule, as a service rule: every combination of owners ----------------------------------------

OWNER_STATES = {
    "granted": ("active", "granted"),
    "withdrawn": ("active", "withdrawn"),
    "never": ("active", None),
    "restricted": ("restricted", "granted"),
    "erased": ("erased", None),
}
ALONE = {
    "granted": "consent_granted",
    "withdrawn": "consent_withdrawn",
    "never": "no_consent",
    "restricted": "subject_restricted",
    "erased": "subject_erased",
}


@pytest.mark.parametrize("first", sorted(OWNER_STATES))
@pytest.mark.parametrize("second", sorted(OWNER_STATES))
def test_owners_agree_or_conflict(first, second):
    """Two subjects that verified the same address, in every pair of states: their common answer, else
    `conflict`; an owner's channel opt-out or an opt-out on the contact wins over both; `unverified_contact`
    only when no owner verified it."""
    a, b = uuid.uuid4(), uuid.uuid4()
    facts = _Facts(owners={"h": [a, b]}, owner_state={a: OWNER_STATES[first], b: OWNER_STATES[second]})
    expected = ALONE[first] if ALONE[first] == ALONE[second] else "conflict"
    answer = _answer("email", ("h",), facts)
    assert (answer.reason, answer.allowed) == (expected, expected == "consent_granted")
    # Asked by e-mail and phone, owned by one subject each: the same rule.
    split = _Facts(owners={"e": [a], "p": [b]}, owner_state=facts.owner_state)
    assert _answer("sms", ("e", "p"), split).reason == expected
    assert (
        _answer("sms", ("e", "p"), _Facts(**{**vars(split), "subject_opted": {b: {"sms"}}})).reason
        == "opted_out"
    )
    assert _answer("email", ("h",), _Facts(**{**vars(facts), "opted": {"h": {"all"}}})).reason == "opted_out"
    assert _answer("email", ("h",), _Facts(**{**vars(facts), "opted": {"h": {"sms"}}})).reason == expected


def test_nobody_verified_it():
    assert _answer("email", ("h",), _Facts(claimed={"h"})).reason == "unverified_contact"
    assert _answer("email", ("h",), _Facts()).reason == "not_a_subject"
    assert _answer("email", (), _Facts()).reason == "invalid_contact"
