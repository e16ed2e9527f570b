"""Idempotency-Key on creating POSTs."""

from __future__ import annotations

import asyncio
import uuid

from tests.support import as_subject, assert_problem, make_subject, staff, unique_email

WRITER = staff("subjects:write", "subjects:read")


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return headers | {"Idempotency-Key": key}


async def test_same_key_same_body_replays_the_first_result(client):
    key, body = uuid.uuid4().hex, {"email": unique_email()}
    first = await client.post("/v1/subjects", json=body, headers=keyed(WRITER, key))
    second = await client.post("/v1/subjects", json=body, headers=keyed(WRITER, key))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    found = await client.get("/v1/subjects", params={"email": body["email"]}, headers=WRITER)
    assert len(found.json()["items"]) == 1


async def test_whitespace_and_key_order_do_not_make_another_request(client):
    key, email = uuid.uuid4().hex, unique_email()
    first = await client.post("/v1/subjects", content=f'{{"email": "{email}", "name": "A"}}',
                              headers=keyed(WRITER, key) | {"Content-Type": "application/json"})
    second = await client.post("/v1/subjects", content=f'{{"name":"A","email":"{email}"}}',
                               headers=keyed(WRITER, key) | {"Content-Type": "application/json"})
    assert first.json()["id"] == second.json()["id"]


async def test_same_key_other_body_is_422(client):
    key = uuid.uuid4().hex
    assert (await client.post("/v1/subjects", json={"email": unique_email()}, headers=keyed(WRITER, key))).status_code == 201
    response = await client.post("/v1/subjects", json={"email": unique_email()}, headers=keyed(WRITER, key))
    assert assert_problem(response, 422)["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_keys_are_scoped_per_caller(client):
    a, b = await make_subject(client), await make_subject(client)
    key, body = "shared-key", {"category": "name", "value": "N", "source": "direct", "purpose": "service"}
    one = await client.post(f"/v1/subjects/{a['id']}/data", json=body, headers=keyed(as_subject(a["id"]), key))
    two = await client.post(f"/v1/subjects/{b['id']}/data", json=body, headers=keyed(as_subject(b["id"]), key))
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]


async def test_ten_concurrent_identical_requests_create_exactly_one(client):
    subject = await make_subject(client)
    key = uuid.uuid4().hex
    body = {"category": "phone", "value": "070-000 00 00", "source": "direct", "purpose": "service"}
    responses = await asyncio.gather(*[
        client.post(f"/v1/subjects/{subject['id']}/data", json=body, headers=keyed(WRITER, key)) for _ in range(10)])
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    items = (await client.get(f"/v1/subjects/{subject['id']}/data", headers=WRITER)).json()["items"]
    assert len(items) == 1


async def test_replay_is_rendered_for_the_caller_not_stored(client):
    subject = await make_subject(client)
    key = uuid.uuid4().hex
    body = {"category": "payment", "value": "4000 0000 0000 0002", "source": "direct", "purpose": "billing"}
    full = staff("subjects:write", "sensitive:read")
    first = await client.post(f"/v1/subjects/{subject['id']}/data", json=body, headers=keyed(full, key))
    assert first.json()["value"] == "4000 0000 0000 0002"
    again = await client.post(f"/v1/subjects/{subject['id']}/data", json=body, headers=keyed(full, key))
    assert again.json() == first.json()


async def test_without_a_key_each_request_creates(client):
    subject = await make_subject(client)
    body = {"category": "name", "value": "N", "source": "direct", "purpose": "service"}
    ids = {(await client.post(f"/v1/subjects/{subject['id']}/data", json=body, headers=WRITER)).json()["id"]
           for _ in range(2)}
    assert len(ids) == 2


async def test_a_failed_request_does_not_burn_the_key(client):
    key = uuid.uuid4().hex
    existing = await make_subject(client)
    conflict = await client.post("/v1/subjects", json={"email": existing["email"]}, headers=keyed(WRITER, key))
    assert_problem(conflict, 409)
    retry = await client.post("/v1/subjects", json={"email": existing["email"]}, headers=keyed(WRITER, key))
    assert_problem(retry, 409)  # carried out again (and refused again), not replayed as a phantom success
