"""The conventions every response follows: problem+json errors, limits, request ids, caching."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support import STAFF_ALL, assert_problem, make_subject, staff, unique_email


async def test_unknown_route_is_a_problem(client):
    body = assert_problem(await client.get("/v1/no-such-thing"), 404)
    assert body["instance"] == "/v1/no-such-thing"


async def test_wrong_method_is_405_with_allow(client):
    response = await client.put("/v1/purposes")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_malformed_json_is_400(client):
    response = await client.post("/v1/subjects", content=b'{"email": ', headers=STAFF_ALL | {
        "Content-Type": "application/json"})
    assert "JSON" in assert_problem(response, 400)["detail"]


async def test_a_body_that_is_not_json_is_400(client):
    response = await client.post("/v1/subjects", content=b"email=a@example.se", headers=STAFF_ALL | {
        "Content-Type": "text/plain"})
    assert_problem(response, 400)


async def test_validation_errors_name_the_field_and_never_echo_the_input(client):
    secret = "4111111111111111"
    response = await client.post("/v1/subjects", json={"email": secret}, headers=STAFF_ALL)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "email"] and body["errors"][0]["msg"]
    assert secret not in response.text


async def test_a_pattern_failure_says_what_is_expected_in_words(client):
    """Not the regular expression it failed (which told a caller nothing, and showed how validation works)."""
    response = await client.post("/v1/subjects", json={"email": "anna.svensson(at)example.se"}, headers=STAFF_ALL)
    [error] = assert_problem(response, 422)["errors"]
    assert error == {"loc": ["body", "email"], "msg": "Must be an e-mail address, such as anna.svensson@example.se"}
    keyed = await client.post("/v1/subjects", json={"email": unique_email()},
                              headers=STAFF_ALL | {"Idempotency-Key": "two words"})
    assert assert_problem(keyed, 422)["errors"][0]["msg"] == "Must be printable ASCII characters, without spaces"
    purpose = await client.post("/v1/decisions", json={"subject_id": str(uuid.uuid4()), "purpose": "Mark eting"},
                                headers=STAFF_ALL)
    assert assert_problem(purpose, 422)["errors"][0]["msg"].startswith("Must be a code: a lower-case letter")
    for answer in (response, keyed, purpose):
        assert "^" not in answer.text and "[A-Za-z" not in answer.text and "{1," not in answer.text


async def test_body_over_the_limit_is_413(client):
    big = json.dumps({"email": unique_email(), "name": "x" * (1024 * 1024)})
    assert_problem(await client.post("/v1/subjects", content=big, headers=STAFF_ALL | {
        "Content-Type": "application/json"}), 413)


async def test_chunked_body_over_the_limit_is_413(client):
    async def chunks():
        yield b'{"email": "a@example.se", "name": "'
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/v1/subjects", content=chunks(), headers=STAFF_ALL | {
        "Content-Type": "application/json"})
    assert "content-length" not in response.request.headers  # streamed: only the bytes can be counted
    assert_problem(response, 413)


async def test_request_id_is_echoed_or_generated(client):
    echoed = await client.get("/v1/purposes", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    generated = await client.get("/v1/purposes")
    assert len(generated.headers["x-request-id"]) == 32
    # Something that could inject into logs is replaced, not echoed.
    hostile = await client.get("/v1/purposes", headers={"X-Request-ID": "a b\tc"})
    assert hostile.headers["x-request-id"] != "a b\tc"
    problem = await client.get("/v1/nothing", headers={"X-Request-ID": "trace-456"})
    assert problem.json()["request_id"] == "trace-456"


async def test_personal_data_is_never_cached_public_catalog_is(client):
    subject = await make_subject(client)
    response = await client.get(f"/v1/subjects/{subject['id']}", headers=STAFF_ALL)
    assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/v1/subjects", headers=STAFF_ALL)).headers["cache-control"] == "no-store"
    assert (await client.get("/v1/no-such")).headers["cache-control"] == "no-store"
    assert (await client.get("/v1/purposes")).headers["cache-control"].startswith("public")


@pytest.mark.parametrize("path", ["/v1/subjects/not-a-uuid", "/v1/subjects?limit=0", "/v1/subjects?limit=501",
                                  "/v1/subjects?email=%00", "/v1/subjects?external_ref=%00",
                                  "/v1/audit-events?subject_id=zzz"])
async def test_bad_parameters_are_422(client, path):
    assert_problem(await client.get(path, headers=STAFF_ALL), 422)


async def test_hot_paths_run_nothing_in_a_worker_thread(client, monkeypatch):
    """FastAPI runs a sync dependency (a class too) in a worker thread: a thread hop on every request."""
    import anyio.to_thread

    offloaded: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def spy(func, *args, **kwargs):
        offloaded.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    subject = await make_subject(client)
    writer = staff("consents:write", "consents:read")
    key = {"Idempotency-Key": uuid.uuid4().hex}  # unique: a rerun on the same database must not replay a key
    assert (await client.post(f"/v1/subjects/{subject['id']}/consents", headers=writer | key,
                              json={"purpose": "newsletter", "status": "granted", "channel": "web"})).status_code == 201
    assert (await client.post("/v1/decisions", headers=writer,
                              json={"subject_id": subject["id"], "purpose": "newsletter"})).status_code == 200
    assert (await client.get(f"/v1/subjects/{subject['id']}", headers=STAFF_ALL)).status_code == 200
    assert offloaded == []
