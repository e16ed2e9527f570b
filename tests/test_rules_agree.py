"""Issue 16, part 1: rules that must agree. Unsubscribing stops what it says (consents sent only by e-mail
are withdrawn, method `unsubscribe`), decisions and the marketing check answer by one rule, receipts tell the
truth, and the catalog covers every source the policy names."""

from __future__ import annotations

import itertools
import uuid

import pytest
from jose import jwt
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.decisions import service as decisions
from app.decisions.schemas import Reason
from app.marketing import service as marketing
from app.marketing.schemas import CheckReason
from tests.support import as_subject, assert_problem, complete_request, make_subject, staff

WRITER = staff("consents:write", "consents:read")
READER = staff("consents:read")


async def give(client, subject_id: str, purpose: str, status: str = "granted") -> dict:
    response = await client.post(
        f"/v1/subjects/{subject_id}/consents",
        headers=WRITER,
        json={"purpose": purpose, "status": status, "channel": "crm"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def states(client, subject_id: str) -> dict[str, str]:
    items = (await client.get(f"/v1/subjects/{subject_id}/consents", headers=READER)).json()["items"]
    return {item["purpose"]: item["status"] for item in items}


async def decide(client, subject_id: str, purpose: str) -> dict:
    response = await client.post(
        "/v1/decisions", json={"subject_id": subject_id, "purpose": purpose}, headers=READER
    )
    assert response.status_code == 200, response.text
    return response.json()


async def check(client, email: str, channel: str = "email") -> dict:
    response = await client.post(
        "/v1/marketing/check", headers=READER, json={"contacts": [{"email": email, "channel": channel}]}
    )
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


async def newest_event(client, subject_id: str, purpose: str) -> dict:
    items = (await client.get(f"/v1/subjects/{subject_id}/consents/history", headers=READER)).json()["items"]
    return next(item for item in items if item["purpose"] == purpose)


# --- every way of opting out of e-mail ----------------------------------------------------------------------


async def by_link(client, subject: dict) -> str:
    link = (
        await client.post("/v1/marketing/unsubscribe-links", json={"email": subject["email"]}, headers=READER)
    ).json()
    done = await client.post(
        "/v1/marketing/unsubscribe", params={"token": link["token"]}, data={"List-Unsubscribe": "One-Click"}
    )
    assert done.status_code == 200
    return "email"


async def by_subject_channel(client, subject: dict) -> str:
    response = await client.put(
        f"/v1/subjects/{subject['id']}/marketing",
        json={"channels": {"email": "opted_out"}},
        headers=as_subject(subject["id"]),
    )
    assert response.status_code == 200
    return "web"


async def by_staff_channel(client, subject: dict) -> str:
    response = await client.put(
        f"/v1/subjects/{subject['id']}/marketing", json={"channels": {"email": "opted_out"}}, headers=WRITER
    )
    assert response.status_code == 200
    return "api"


async def by_staff_contact_email(client, subject: dict) -> str:
    response = await client.post(
        "/v1/marketing/opt-outs", json={"email": subject["email"], "channel": "email"}, headers=WRITER
    )
    assert response.status_code == 201
    return "api"


async def by_staff_contact_all(client, subject: dict) -> str:
    response = await client.post(
        "/v1/marketing/opt-outs", json={"email": subject["email"], "channel": "all"}, headers=WRITER
    )
    assert response.status_code == 201
    return "api"


OPT_OUTS = [by_link, by_subject_channel, by_staff_channel, by_staff_contact_email, by_staff_contact_all]


@pytest.mark.parametrize("opt_out", OPT_OUTS, ids=lambda f: f.__name__)
async def test_an_email_opt_out_withdraws_the_newsletter(client, opt_out):
    subject = await make_subject(client)
    await give(client, subject["id"], "newsletter")
    await give(client, subject["id"], "marketing")
    assert (await decide(client, subject["id"], "newsletter"))["allowed"] is True

    channel = await opt_out(client, subject)

    assert (await states(client, subject["id"]))["newsletter"] == "withdrawn"
    event = await newest_event(client, subject["id"], "newsletter")
    assert event["status"] == "withdrawn" and event["method"] == "unsubscribe" and event["channel"] == channel
    assert await decide(client, subject["id"], "newsletter") == {
        "allowed": False,
        "legal_basis": "consent",
        "reasons": ["consent_withdrawn"],
    }
    # Marketing is sent by other channels too: its consent stands, and only e-mail is closed to it.
    assert (await states(client, subject["id"]))["marketing"] == "granted"
    assert (await decide(client, subject["id"], "marketing"))["allowed"] is True
    assert (await check(client, subject["email"]))["reason"] == "opted_out"


async def test_a_repeated_unsubscribe_records_no_second_withdrawal(client):
    subject = await make_subject(client)
    await give(client, subject["id"], "newsletter")
    await by_link(client, subject)
    await by_link(client, subject)
    await by_staff_contact_email(client, subject)
    items = (await client.get(f"/v1/subjects/{subject['id']}/consents/history", headers=READER)).json()[
        "items"
    ]
    assert [i["method"] for i in items if i["purpose"] == "newsletter"] == ["unsubscribe", "explicit"]


async def test_opting_out_of_every_channel_withdraws_marketing_too(client):
    subject = await make_subject(client)
    await give(client, subject["id"], "marketing")
    for channel in ("email", "sms", "phone"):
        await client.put(
            f"/v1/subjects/{subject['id']}/marketing",
            json={"channels": {channel: "opted_out"}},
            headers=as_subject(subject["id"]),
        )
        assert (await states(client, subject["id"]))["marketing"] == "granted"
    await client.put(
        f"/v1/subjects/{subject['id']}/marketing",
        json={"channels": {"post": "opted_out"}},
        headers=as_subject(subject["id"]),
    )
    assert (await states(client, subject["id"]))["marketing"] == "withdrawn"
    assert (await newest_event(client, subject["id"], "marketing"))["method"] == "unsubscribe"


async def test_the_withdrawal_is_audited_as_a_consent_event(client, db):
    subject = await make_subject(client)
    await give(client, subject["id"], "newsletter")
    await by_link(client, subject)
    async with db() as session:
        actions = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.actor).where(
                    AuditEvent.subject_id == uuid.UUID(subject["id"])
                )
            )
        ).all()
    assert ("consent.withdrawn", "unsubscribe-link") in {(a, actor) for a, actor in actions}


async def test_a_decision_takes_a_standing_opt_out_into_account(client):
    """A consent granted after the opt-out (or before this rule existed) does not reopen the channel:
    decisions say no, as the check does, and both say why."""
    subject = await make_subject(client)
    await by_staff_channel(client, subject)
    await give(client, subject["id"], "newsletter")
    assert (await states(client, subject["id"]))["newsletter"] == "granted"
    assert await decide(client, subject["id"], "newsletter") == {
        "allowed": False,
        "legal_basis": "consent",
        "reasons": ["opted_out"],
    }
    batch = await client.post(
        "/v1/decisions/batch",
        headers=READER,
        json={
            "items": [
                {"subject_id": subject["id"], "purpose": "newsletter"},
                {"subject_id": subject["id"], "purpose": "service"},
            ]
        },
    )
    assert [r["reasons"] for r in batch.json()["results"]] == [["opted_out"], ["basis_contract"]]
    # The subject lifts its opt-out: the newsletter it consented to is allowed again.
    await client.put(
        f"/v1/subjects/{subject['id']}/marketing",
        json={"channels": {"email": "allowed"}},
        headers=as_subject(subject["id"]),
    )
    assert (await decide(client, subject["id"], "newsletter"))["allowed"] is True


@pytest.mark.parametrize(
    ("status", "consent", "opted_out"),
    list(
        itertools.product(["active", "restricted", "erased"], [None, "granted", "withdrawn"], [False, True])
    ),
)
def test_decisions_and_the_check_share_one_rule(status, consent, opted_out):
    """Every combination: a consent purpose's decision lists exactly the shared rule's obstacles, and the
    check's answer for one owner is the first of them."""
    rule = marketing.consent_reasons(status, consent, opted_out=opted_out)
    decided = decisions.decide(status, "consent", consent, False, (), opted_out)
    assert decided.reasons == ([Reason(r.value) for r in rule] or [Reason.consent_granted])
    assert decided.allowed is (not rule)
    if not opted_out:
        assert marketing._owner_reason(status, consent) == (rule[0] if rule else CheckReason.consent_granted)


# --- receipts ----------------------------------------------------------------------------------------------


async def receipt_claims(client, event: dict) -> dict:
    jwks = (await client.get("/v1/consent-receipts/jwks.json")).json()
    return jwt.decode(event["receipt"], jwks, algorithms=["ES256"], options={"verify_aud": False})


async def test_a_receipt_discloses_the_purposes_recipients(client):
    subject = await make_subject(client)
    purposes = {p["code"]: p for p in (await client.get("/v1/purposes")).json()["items"]}
    for code in ("newsletter", "marketing"):
        claims = await receipt_claims(client, await give(client, subject["id"], code))
        purpose = claims["services"][0]["purposes"][0]
        assert purpose["thirdPartyDisclosure"] is bool(purposes[code]["recipients"])
        if purposes[code]["recipients"]:
            assert purpose["thirdPartyName"] == ", ".join(purposes[code]["recipients"])
        else:
            assert "thirdPartyName" not in purpose
    assert purposes["marketing"]["recipients"]  # the default catalog declares the ad networks


async def test_a_receipt_is_in_the_language_it_says(client):
    subject = await make_subject(client)
    claims = await receipt_claims(client, await give(client, subject["id"], "newsletter"))
    newsletter = (await client.get("/v1/purposes/newsletter")).json()
    language = claims["language"]
    purpose = claims["services"][0]["purposes"][0]
    assert claims["services"][0]["service"] == newsletter["name"][language]
    assert purpose["purpose"] == newsletter["description"][language]
    assert purpose["termination"] == newsletter["retention"]["description"][language]


def receipt_mail_url(subject_id: str, event_id: str) -> str:
    return f"/v1/subjects/{subject_id}/consents/history/{event_id}/receipt/mail"


async def test_a_receipt_is_mailed_to_the_subject_on_request(client, mails, db):
    subject = await make_subject(client)
    event = await give(client, subject["id"], "newsletter")
    for headers in (as_subject(subject["id"]), WRITER):
        response = await client.post(receipt_mail_url(subject["id"], event["id"]), headers=headers)
        assert response.status_code == 202, response.text
    assert [mail.to for mail in mails] == [subject["email"]] * 2
    body = mails[0].body
    assert event["receipt"] in body and event["id"] in body and "Nyhetsbrev" in body and "Newsletter" in body
    async with db() as session:
        audited = (
            await session.execute(
                select(AuditEvent.target).where(
                    AuditEvent.subject_id == uuid.UUID(subject["id"]),
                    AuditEvent.action == "consent.receipt_mailed",
                )
            )
        ).all()
    assert [t for (t,) in audited] == [event["id"]] * 2


async def test_a_receipt_mail_reaches_no_one_else(client, mails):
    subject, other = await make_subject(client), await make_subject(client)
    event = await give(client, subject["id"], "newsletter")
    url = receipt_mail_url(subject["id"], event["id"])
    assert_problem(await client.post(url, headers=as_subject(other["id"])), 404)
    assert_problem(await client.post(url, headers=READER), 403)
    assert_problem(await client.post(url), 401)
    assert_problem(await client.post(receipt_mail_url(other["id"], event["id"]), headers=WRITER), 404)
    assert_problem(await client.post(receipt_mail_url(subject["id"], str(uuid.uuid4())), headers=WRITER), 404)
    assert_problem(await client.post(receipt_mail_url(subject["id"], "not-an-id"), headers=WRITER), 422)
    assert mails == []


async def test_receipt_mails_are_rate_limited_per_subject(client, mails):
    subject = await make_subject(client)
    event = await give(client, subject["id"], "newsletter")
    url = receipt_mail_url(subject["id"], event["id"])
    answers = [(await client.post(url, headers=as_subject(subject["id"]))).status_code for _ in range(6)]
    assert answers == [202] * 5 + [429] and len(mails) == 5
    refused = await client.post(url, headers=WRITER)
    assert_problem(refused, 429) and int(refused.headers["Retry-After"]) >= 1
    other = await make_subject(client)  # another subject's inbox has its own count
    event = await give(client, other["id"], "newsletter")
    assert (await client.post(receipt_mail_url(other["id"], event["id"]), headers=WRITER)).status_code == 202


async def test_an_erased_subject_has_no_receipt_mailed(client, mails):
    subject = await make_subject(client)
    event = await give(client, subject["id"], "newsletter")
    await complete_request(client, subject["id"], "erasure")
    assert_problem(await client.post(receipt_mail_url(subject["id"], event["id"]), headers=WRITER), 409)
    assert [mail for mail in mails if "receipt" in mail.body.lower()] == []


# --- the catalog covers the policy -------------------------------------------------------------------------


POLICY_SOURCES = {
    "courses": "contract",
    "surveys": "consent",
    "job_applications": "contract",
    "office_visits": "legitimate_interest",
    "security": "legitimate_interest",
}


async def test_every_source_the_policy_names_has_a_purpose(client):
    items = {p["code"]: p for p in (await client.get("/v1/purposes")).json()["items"]}
    assert {code: items[code]["legal_basis"] for code in POLICY_SOURCES} == POLICY_SOURCES
    for code in POLICY_SOURCES:
        purpose = items[code]
        assert purpose["retention"]["clock"] and purpose["categories"] and purpose["subject_categories"]
        assert purpose["name"]["sv"] and purpose["name"]["en"] and purpose["retention"]["description"]["sv"]
    # Where a law sets the period, the rule names it, as billing's names the Bookkeeping Act.
    recruitment = items["job_applications"]["retention"]["description"]
    assert "diskrimineringslagen" in recruitment["sv"] and "Discrimination Act" in recruitment["en"]
    assert "bokföringslagen" in items["billing"]["retention"]["description"]["sv"]


async def test_the_new_purposes_are_in_a_new_notice_version(client):
    listed = [v["version"] for v in (await client.get("/v1/policies")).json()["items"]]
    assert "2026-11-29" in listed
    for lang, words in (("sv", ("enkät", "kontor", "arbete")), ("en", ("survey", "offices", "job"))):
        notice = (await client.get("/v1/policies/2026-11-29", params={"lang": lang})).json()
        ids = [s["id"] for s in notice["sections"]]
        assert len(ids) == len(set(ids)) and "cookies" in ids  # the earlier notice's sections are kept
        sources = next(s for s in notice["sections"] if s["id"] == "sources")["body"]
        assert all(word in sources for word in words)
