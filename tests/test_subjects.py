"""Subjects and the register, through the HTTP API."""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.idempotency.models import IdempotencyRecord
from app.subjects.models import PersonalDataItem, Subject
from tests.support import (
    STAFF_ALL,
    add_item,
    as_subject,
    assert_problem,
    auth,
    make_subject,
    staff,
    unique_email,
)


async def test_create_subject_returns_the_contract_fields(client):
    email = unique_email("anna")
    response = await client.post("/v1/subjects", json={"email": email, "name": "Anna", "external_ref": "crm-1"},
                                 headers=staff("subjects:write"))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "external_ref", "status", "created_at", "relationship_ended_at"}
    assert body["email"] == email and body["status"] == "active" and body["relationship_ended_at"] is None
    assert body["created_at"].endswith("Z")
    uuid.UUID(body["id"])


async def test_same_email_in_other_case_is_a_conflict_naming_the_existing_subject(client):
    first = await make_subject(client)
    response = await client.post("/v1/subjects", json={"email": first["email"].upper()},
                                 headers=staff("subjects:write"))
    body = assert_problem(response, 409)
    assert body["existing_id"] == first["id"]


async def test_concurrent_creates_of_one_address_make_one_subject_and_no_500(client):
    email = unique_email("race")
    responses = await asyncio.gather(*[
        client.post("/v1/subjects", json={"email": email}, headers=staff("subjects:write")) for _ in range(5)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    created = next(r.json()["id"] for r in responses if r.status_code == 201)
    assert all(r.json()["existing_id"] == created for r in responses if r.status_code == 409)


async def test_lookup_by_email_is_exact_and_case_insensitive(client):
    subject = await make_subject(client)
    found = await client.get("/v1/subjects", params={"email": subject["email"].upper()}, headers=staff("subjects:read"))
    assert found.status_code == 200
    assert [s["id"] for s in found.json()["items"]] == [subject["id"]]
    other = await client.get("/v1/subjects", params={"email": "x" + subject["email"]}, headers=staff("subjects:read"))
    assert other.json() == {"items": [], "next_cursor": None}


async def test_lookup_by_external_ref(client):
    ref = f"crm-{uuid.uuid4().hex[:8]}"
    subject = await make_subject(client, external_ref=ref)
    found = await client.get("/v1/subjects", params={"external_ref": ref}, headers=staff("subjects:read"))
    assert [s["id"] for s in found.json()["items"]] == [subject["id"]]


async def test_list_pages_through_every_subject_once(client):
    ref = f"page-{uuid.uuid4().hex[:8]}"
    created = {(await make_subject(client, external_ref=ref))["id"] for _ in range(5)}
    seen, cursor = [], None
    while True:
        params = {"external_ref": ref, "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/subjects", params=params, headers=staff("subjects:read"))).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)


async def test_a_cursor_we_did_not_issue_is_refused(client):
    response = await client.get("/v1/subjects", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=staff("subjects:read"))
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["query", "cursor"]


async def test_subject_reads_itself_and_me(client):
    subject = await make_subject(client)
    own = await client.get(f"/v1/subjects/{subject['id']}", headers=as_subject(subject["id"]))
    assert own.status_code == 200 and own.json()["id"] == subject["id"]
    me = await client.get("/v1/me", headers=as_subject(subject["id"]))
    assert me.status_code == 200 and me.json() == own.json()


async def test_another_subject_is_indistinguishable_from_a_missing_one(client):
    me, other = await make_subject(client), await make_subject(client)
    for path in ("", "/data"):
        theirs = await client.get(f"/v1/subjects/{other['id']}{path}", headers=as_subject(me["id"]))
        missing = await client.get(f"/v1/subjects/{uuid.uuid4()}{path}", headers=as_subject(me["id"]))
        a, b = assert_problem(theirs, 404), assert_problem(missing, 404)
        assert (a["title"], a["detail"], a["type"]) == (b["title"], b["detail"], b["type"])
    write = await client.post(f"/v1/subjects/{other['id']}/data", headers=as_subject(me["id"]),
                              json={"category": "name", "value": "x", "source": "direct", "purpose": "service"})
    assert_problem(write, 404)


async def test_roles_and_scopes_guard_the_register(client):
    subject = await make_subject(client)
    sid = subject["id"]
    assert_problem(await client.get(f"/v1/subjects/{sid}", headers=staff("consents:read")), 403)
    assert_problem(await client.get("/v1/subjects", headers=as_subject(sid)), 403)
    assert_problem(await client.post("/v1/subjects", json={"email": unique_email()}, headers=staff("subjects:read")), 403)
    assert_problem(await client.get(f"/v1/subjects/{sid}", headers=auth("processor", str(uuid.uuid4()))), 403)
    assert_problem(await client.get("/v1/me", headers=staff("subjects:read")), 403)
    # Scopes on a subject's token mean nothing.
    assert_problem(await client.get("/v1/subjects", headers=auth("subject", sid, "subjects:read")), 403)


async def test_relationship_end_is_recorded_once(client):
    subject = await make_subject(client)
    url = f"/v1/subjects/{subject['id']}/relationship-end"
    ended = await client.post(url, headers=staff("subjects:write"), json={"ended_at": "2026-01-31T12:00:00+01:00"})
    assert ended.status_code == 200
    assert ended.json()["relationship_ended_at"] == "2026-01-31T11:00:00Z"
    again = await client.post(url, headers=staff("subjects:write"))
    assert again.json()["relationship_ended_at"] == "2026-01-31T11:00:00Z"
    # The subject itself cannot end it, and the future is refused.
    other = await make_subject(client)
    assert_problem(await client.post(f"/v1/subjects/{other['id']}/relationship-end",
                                     headers=as_subject(other["id"])), 403)
    future = await client.post(f"/v1/subjects/{other['id']}/relationship-end", headers=staff("subjects:write"),
                               json={"ended_at": "2999-01-01T00:00:00Z"})
    assert_problem(future, 422)


async def test_data_item_round_trip(client):
    subject = await make_subject(client)
    item = await add_item(client, subject["id"], category="address", value="Storgatan 1", source="public_register",
                          purpose="billing")
    assert set(item) == {"id", "category", "value", "source", "purpose", "collected_at", "updated_at", "sensitive",
                         "retained_until", "retention_reason"}
    assert item["retained_until"] is None and item["retention_reason"] is None
    assert item["value"] == "Storgatan 1" and item["sensitive"] is False and item["source"] == "public_register"
    listed = await client.get(f"/v1/subjects/{subject['id']}/data", headers=staff("subjects:read"))
    assert listed.json()["items"] == [item]


async def test_data_item_enums_and_purpose_are_validated(client):
    subject = await make_subject(client)
    url = f"/v1/subjects/{subject['id']}/data"
    base = {"category": "phone", "value": "1", "source": "direct", "purpose": "service"}
    for field, bad in (("category", "shoe_size"), ("source", "rumour")):
        body = assert_problem(await client.post(url, json=base | {field: bad}, headers=staff("subjects:write")), 422)
        assert body["errors"][0]["loc"] == ["body", field]
    unknown = assert_problem(await client.post(url, json=base | {"purpose": "world_domination"},
                                               headers=staff("subjects:write")), 422)
    assert unknown["errors"][0]["loc"] == ["body", "purpose"]


async def test_payment_is_encrypted_at_rest_and_masked_without_sensitive_read(client, db):
    subject = await make_subject(client)
    card = "4111 1111 1111 1234"
    item = await add_item(client, subject["id"], category="payment", value=card, purpose="billing")
    assert item["sensitive"] is True and item["value"] == "****1234"

    async with db() as session:
        row = await session.get(PersonalDataItem, uuid.UUID(item["id"]))
    assert row.value is None and row.key_id == "dev"
    assert b"4111" not in row.ciphertext and b"1234" not in row.ciphertext

    masked = (await client.get(f"/v1/subjects/{subject['id']}/data", headers=staff("subjects:read"))).json()
    assert masked["items"][0]["value"] == "****1234"
    own = (await client.get(f"/v1/subjects/{subject['id']}/data", headers=as_subject(subject["id"]))).json()
    assert own["items"][0]["value"] == "****1234"
    full = (await client.get(f"/v1/subjects/{subject['id']}/data",
                             headers=staff("subjects:read", "sensitive:read"))).json()
    assert full["items"][0]["value"] == card


async def test_short_payment_values_show_no_digits(client):
    subject = await make_subject(client)
    item = await add_item(client, subject["id"], category="payment", value="123456", purpose="billing")
    assert item["value"] == "****"


async def test_rectification_replaces_the_value_and_keeps_no_copy(client, db):
    subject = await make_subject(client)
    item = await add_item(client, subject["id"], category="address", value="Gamla gatan 9", purpose="service")
    response = await client.patch(f"/v1/subjects/{subject['id']}/data/{item['id']}", json={"value": "Nya gatan 1"},
                                  headers=as_subject(subject["id"]))
    assert response.status_code == 200
    assert response.json()["value"] == "Nya gatan 1"
    assert response.json()["updated_at"] >= item["updated_at"]
    async with db() as session:
        for column in (PersonalDataItem.value, AuditEvent.target, AuditEvent.action, IdempotencyRecord.resource_key):
            found = await session.execute(select(column).where(column.like("%Gamla gatan%")))
            assert found.first() is None, column

async def test_rectify_payment_re_encrypts(client):
    subject = await make_subject(client)
    item = await add_item(client, subject["id"], category="payment", value="5555 4444 3333 1111", purpose="billing")
    url = f"/v1/subjects/{subject['id']}/data/{item['id']}"
    patched = await client.patch(url, json={"value": "5555 4444 3333 2222"}, headers=staff("subjects:write"))
    assert patched.json()["value"] == "****2222"


async def test_item_of_another_subject_is_not_found(client):
    a, b = await make_subject(client), await make_subject(client)
    item = await add_item(client, a["id"])
    response = await client.patch(f"/v1/subjects/{b['id']}/data/{item['id']}", json={"value": "x"},
                                  headers=staff("subjects:write"))
    assert_problem(response, 404)


async def test_erased_subject_takes_no_new_data(client, db):
    subject = await make_subject(client)
    async with db() as session:
        row = await session.get(Subject, uuid.UUID(subject["id"]))
        row.status = "erased"
        await session.commit()
    response = await client.post(f"/v1/subjects/{subject['id']}/data", headers=STAFF_ALL,
                                 json={"category": "name", "value": "x", "source": "direct", "purpose": "service"})
    assert_problem(response, 409)


async def test_blank_and_unstorable_text_is_refused(client):
    for email in ("", "not-an-email", "a\x00b@example.se"):
        assert_problem(await client.post("/v1/subjects", json={"email": email}, headers=STAFF_ALL), 422)
    subject = await make_subject(client)
    for value in ("", "   ", "nul\x00byte", "lone \ud800 surrogate"):
        body = json.dumps({"category": "name", "value": value, "source": "direct", "purpose": "service"})
        response = await client.post(f"/v1/subjects/{subject['id']}/data", content=body,
                                     headers=STAFF_ALL | {"Content-Type": "application/json"})
        assert_problem(response, 422)


async def test_unknown_fields_are_refused(client):
    response = await client.post("/v1/subjects", json={"email": unique_email(), "status": "erased"}, headers=STAFF_ALL)
    assert_problem(response, 422)
