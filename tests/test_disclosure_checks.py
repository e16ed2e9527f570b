"""Disclosures are checked (issue 16, part 1 and 3): a disclosure against the rules is recorded, flagged with
why, never refused (docs/behaviour.md): the subject erased by then, restricted outside `legal_obligation`, a
consent purpose without consent granted when disclosed, a recipient in a third country without a transfer
mechanism, or ended by then. Staff list the flagged ones; the subject sees them; a processor sees only the
flags about itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.audit.models import AuditEvent
from tests.support import (
    ADMIN,
    as_processor,
    as_subject,
    assert_problem,
    complete_request,
    make_processor,
    make_subject,
    staff,
)

WRITER = staff("disclosures:write", "disclosures:read")
READER = staff("disclosures:read")
SCC = {"mechanism": "scc", "scc_module": 2, "scc_signed_on": "2026-03-01"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def disclose(
    client, recipient: str, subject: str, purpose: str, at: datetime | None = None, headers=WRITER
) -> dict:
    body = {"subject_id": subject, "categories": ["email"], "purpose": purpose, "recipient_id": recipient}
    if at is not None:
        body["disclosed_at"] = iso(at)
    response = await client.post("/v1/disclosures", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def consent(client, subject: str, status: str, at: datetime, purpose: str = "newsletter") -> None:
    response = await client.post(
        f"/v1/subjects/{subject}/consents",
        headers=staff("consents:write"),
        json={"purpose": purpose, "status": status, "channel": "web", "occurred_at": iso(at)},
    )
    assert response.status_code == 201, response.text


async def test_a_consent_purpose_is_checked_against_consent_when_disclosed(client):
    processor = await make_processor(client, country="SE")
    now = datetime.now(UTC)
    never, granted, withdrawn, late = [await make_subject(client) for _ in range(4)]
    await consent(client, granted["id"], "granted", now - timedelta(days=10))
    await consent(client, withdrawn["id"], "granted", now - timedelta(days=10))
    await consent(client, withdrawn["id"], "withdrawn", now - timedelta(days=2))
    await consent(client, late["id"], "granted", now - timedelta(days=1))
    cases = [  # subject, disclosed at, flagged
        (never, None, True),
        (granted, None, False),
        (granted, now - timedelta(days=11), True),  # before the consent was given
        (withdrawn, now - timedelta(days=5), False),  # while it was granted
        (withdrawn, None, True),  # after it was withdrawn
        (late, now - timedelta(days=3), True),
        (late, None, False),
    ]
    for subject, at, flagged in cases:
        recorded = await disclose(client, processor["id"], subject["id"], "newsletter", at)
        assert (recorded["flagged"], recorded["flags"]) == (
            (True, ["no_consent"]) if flagged else (False, [])
        ), (subject["id"], at)
    # Purposes on another legal basis need no consent.
    for purpose in ("service", "billing", "customer_support"):
        assert (await disclose(client, processor["id"], never["id"], purpose))["flagged"] is False


async def test_a_restricted_subject_only_for_legal_obligations(client):
    processor = await make_processor(client, country="SE")
    subject = await make_subject(client)
    await complete_request(client, subject["id"], "restriction")
    for purpose, flagged in (("service", True), ("customer_support", True), ("billing", False)):
        recorded = await disclose(client, processor["id"], subject["id"], purpose)
        assert recorded["flags"] == (["subject_restricted"] if flagged else []), purpose


async def test_an_erased_subject_from_its_erasure_on(client):
    processor = await make_processor(client, country="SE")
    subject = await make_subject(client)
    before = datetime.now(UTC) - timedelta(hours=1)
    await complete_request(client, subject["id"], "erasure")
    after = await disclose(client, processor["id"], subject["id"], "billing")
    assert after["flags"] == ["subject_erased"]
    earlier = await disclose(client, processor["id"], subject["id"], "billing", before)  # reported late
    assert earlier["flagged"] is False


async def test_a_third_country_recipient_needs_a_mechanism_and_an_ended_one_none(client):
    bare = await make_processor(client, country="US")
    safe = await make_processor(client, country="US", transfer=SCC)
    ending = await make_processor(client, country="SE")
    subject = await make_subject(client)
    assert (await disclose(client, bare["id"], subject["id"], "service"))["flags"] == [
        "no_transfer_mechanism"
    ]
    assert (await disclose(client, safe["id"], subject["id"], "service"))["flagged"] is False
    await client.patch(f"/v1/processors/{bare['id']}", json={"transfer": SCC}, headers=ADMIN)
    assert (await disclose(client, bare["id"], subject["id"], "service"))["flagged"] is False
    ended_at = datetime.now(UTC) - timedelta(days=1)
    ended = await client.post(
        f"/v1/processors/{ending['id']}/end", json={"ended_at": iso(ended_at)}, headers=ADMIN
    )
    assert ended.status_code == 200, ended.text
    assert (await disclose(client, ending["id"], subject["id"], "service"))["flags"] == ["processor_ended"]
    assert (await disclose(client, ending["id"], subject["id"], "service", ended_at - timedelta(days=1)))[
        "flagged"
    ] is False
    # An agreement that has expired: flagged from the day after its expiry.
    lapsed = await make_processor(
        client, country="SE", dpa_signed_on="2024-01-01", dpa_expires_on="2025-12-31"
    )
    assert (await disclose(client, lapsed["id"], subject["id"], "service"))["flags"] == ["dpa_expired"]
    within = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert (await disclose(client, lapsed["id"], subject["id"], "service", within))["flagged"] is False
    # Several rules at once: each named.
    both = await disclose(
        client, (await make_processor(client, country="IN"))["id"], subject["id"], "newsletter"
    )
    assert both["flags"] == ["no_consent", "no_transfer_mechanism"]


async def test_staff_list_the_flagged_and_the_subject_sees_them(client, db):
    processor = await make_processor(client, country="SE")
    subject = await make_subject(client)
    flagged = await disclose(client, processor["id"], subject["id"], "newsletter")
    clean = await disclose(client, processor["id"], subject["id"], "service")
    listed = await client.get(
        "/v1/disclosures", params={"flagged": "true", "recipient_id": processor["id"]}, headers=READER
    )
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["items"]] == [flagged["id"]]
    assert listed.json()["items"][0]["flags"] == ["no_consent"]
    unflagged = (
        await client.get(
            "/v1/disclosures", params={"flagged": "false", "recipient_id": processor["id"]}, headers=READER
        )
    ).json()["items"]
    assert [d["id"] for d in unflagged] == [clean["id"]]
    everything = (
        await client.get("/v1/disclosures", params={"recipient_id": processor["id"]}, headers=READER)
    ).json()["items"]
    assert {d["id"] for d in everything} == {flagged["id"], clean["id"]}
    # Newest first across the whole log, paged.
    newest = await disclose(client, processor["id"], (await make_subject(client))["id"], "newsletter")
    page = (
        await client.get("/v1/disclosures", params={"flagged": "true", "limit": 1}, headers=READER)
    ).json()
    assert [d["id"] for d in page["items"]] == [newest["id"]] and page["next_cursor"]
    following = (
        await client.get(
            "/v1/disclosures",
            params={"flagged": "true", "limit": 1, "cursor": page["next_cursor"]},
            headers=READER,
        )
    ).json()
    assert following["items"][0]["id"] != newest["id"]
    for bad in ({"flagged": "maybe"}, {"recipient_id": "x"}, {"limit": 0}, {"limit": 501}):
        assert_problem(await client.get("/v1/disclosures", params=bad, headers=READER), 422)
    for headers in (staff("disclosures:write"), as_subject(subject["id"]), as_processor(processor["id"])):
        assert_problem(await client.get("/v1/disclosures", headers=headers), 403)
    assert_problem(await client.get("/v1/disclosures"), 401)
    own = (
        await client.get(f"/v1/subjects/{subject['id']}/disclosures", headers=as_subject(subject["id"]))
    ).json()["items"]
    assert {d["id"]: d["flags"] for d in own} == {flagged["id"]: ["no_consent"], clean["id"]: []}
    async with db() as session:
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.subject_id == uuid.UUID(subject["id"]))
                )
            )
            .scalars()
            .all()
        )
    assert actions.count("disclosure.flagged") == 1 and actions.count("disclosure.recorded") == 2


async def test_a_processor_sees_only_the_flags_about_itself(client):
    safe_but_unconsented = await make_processor(client, country="SE")
    bare = await make_processor(client, country="US")
    subject = await make_subject(client)
    for processor in (safe_but_unconsented, bare):
        await disclose(client, processor["id"], subject["id"], "service")  # disclosed to it by staff first
    body = {"subject_id": subject["id"], "categories": ["email"], "purpose": "newsletter"}
    own = await client.post("/v1/disclosures", json=body, headers=as_processor(safe_but_unconsented["id"]))
    assert own.status_code == 201 and (own.json()["flagged"], own.json()["flags"]) == (False, [])
    theirs = await client.post("/v1/disclosures", json=body, headers=as_processor(bare["id"]))
    assert theirs.json()["flags"] == ["no_transfer_mechanism"]
    # Staff see every reason.
    full = (await client.get(f"/v1/disclosures/{own.json()['id']}", headers=READER)).json()
    assert full["flags"] == ["no_consent"]
    # A batch is recorded the same way; the processor's limits stay (a subject not disclosed to it: 422).
    batch = await client.post(
        "/v1/disclosures/batch", json={"items": [body, body]}, headers=as_processor(bare["id"])
    )
    assert batch.status_code == 201 and batch.json() == {"accepted": 2}
    stranger = await make_subject(client)
    refused = await client.post(
        "/v1/disclosures/batch",
        json={"items": [body, body | {"subject_id": stranger["id"]}]},
        headers=as_processor(bare["id"]),
    )
    assert assert_problem(refused, 422)["errors"][0]["loc"] == ["body", "items", 1, "subject_id"]
    assert_problem(
        await client.post(
            "/v1/disclosures", json=body | {"subject_id": stranger["id"]}, headers=as_processor(bare["id"])
        ),
        404,
    )
    flagged = (
        await client.get(
            "/v1/disclosures", params={"flagged": "true", "recipient_id": bare["id"]}, headers=READER
        )
    ).json()["items"]
    assert len(flagged) == 4 and all("no_transfer_mechanism" in d["flags"] for d in flagged)
