"""Revoking an API client revokes its tokens at once (issue 17, item 2): through the token verification cache,
in the worker that revoked it, and in every other worker (PostgreSQL's LISTEN/NOTIFY; while a worker is not
listening, it reads the revoked set on every use)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from app.auth.principals import principal_from_claims
from app.core.security import InvalidToken
from app.main import create_app
from tests.processes import postgres_server
from tests.support import ADMIN, assert_problem, claims, live_server, make_processor, staff, token

PROTECTED = "/v1/subjects"
NEEDS_POSTGRES = pytest.mark.skipif(
    postgres_server() is None, reason="other workers hear of a revocation through PostgreSQL's LISTEN/NOTIFY"
)


async def register(http: httpx.AsyncClient, **body) -> dict:
    body = {"name": "CRM", "role": "staff", **body}
    if body["role"] == "staff":
        body.setdefault("scopes", ["subjects:read"])
    response = await http.post("/v1/clients", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def issue(http: httpx.AsyncClient, registered: dict) -> dict[str, str]:
    response = await http.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def revoke(http: httpx.AsyncClient, registered: dict) -> None:
    response = await http.delete(f"/v1/clients/{registered['client_id']}", headers=ADMIN)
    assert response.status_code == 204, response.text


async def test_a_revoked_staff_clients_token_is_refused_at_once_though_the_token_is_cached(client):
    registered = await register(client)
    bearer = await issue(client, registered)
    for _ in range(2):  # the second call is answered from the verifier's cache
        assert (await client.get(PROTECTED, headers=bearer)).status_code == 200
    await revoke(client, registered)
    refused = assert_problem(await client.get(PROTECTED, headers=bearer), 401)
    assert "revoked" in refused["detail"]
    assert (await client.get(PROTECTED, headers=bearer)).status_code == 401  # and stays refused


async def test_a_revoked_processor_clients_token_is_refused_at_once(client):
    processor = await make_processor(client)
    registered = await register(client, role="processor", processor_id=processor["id"])
    bearer = await issue(client, registered)
    tasks = "/v1/processor-tasks"
    assert (await client.get(tasks, headers=bearer)).status_code == 200
    await revoke(client, registered)
    assert_problem(await client.get(tasks, headers=bearer), 401)


async def test_only_the_revoked_clients_tokens_are_refused(client):
    kept, revoked = await register(client), await register(client)
    kept_bearer, revoked_bearer = await issue(client, kept), await issue(client, revoked)
    await revoke(client, revoked)
    assert (await client.get(PROTECTED, headers=kept_bearer)).status_code == 200
    assert_problem(await client.get(PROTECTED, headers=revoked_bearer), 401)
    # Tokens that name no client (operators' `privacy token`, an identity provider's) are not affected, and a
    # token naming a client id that was never registered is not refused for it either.
    assert (await client.get(PROTECTED, headers=staff("subjects:read"))).status_code == 200
    other = token("staff", "tester", "subjects:read", extra={"client_id": str(uuid.uuid4())})
    assert (await client.get(PROTECTED, headers={"Authorization": f"Bearer {other}"})).status_code == 200


async def test_a_token_naming_its_client_in_another_spelling_is_still_refused(client):
    """The revoked set holds canonical UUIDs; a token is compared by the UUID its claim names."""
    registered = await register(client)
    await revoke(client, registered)
    spelled = registered["client_id"].upper().replace("-", "")
    forged_looking = token("staff", registered["client_id"], "subjects:read", extra={"client_id": spelled})
    assert_problem(await client.get(PROTECTED, headers={"Authorization": f"Bearer {forged_looking}"}), 401)


def test_the_principal_carries_the_client_and_refuses_an_odd_client_claim():
    base = claims(sub="crm", scope=None)
    client_id = uuid.uuid4()
    assert principal_from_claims(base | {"client_id": str(client_id)}).client_id == str(client_id)
    assert principal_from_claims(base | {"client_id": client_id.hex}).client_id == str(client_id)
    assert principal_from_claims(base).client_id is None
    for odd in (["x"], {"a": 1}, 7, True, "", "x" * 201):
        with pytest.raises(InvalidToken):
            principal_from_claims(base | {"client_id": odd})


@NEEDS_POSTGRES
async def test_another_app_on_the_database_refuses_the_token_once_notified(client, settings):
    """A second app (another worker) that verified and cached the token hears of the revocation by NOTIFY."""
    other = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as elsewhere,
    ):
        registered = await register(client)
        bearer = await issue(client, registered)
        deadline = time.monotonic() + 10
        while not other.state.runtime.revoked_clients.listening:  # its listener connects in the background
            assert time.monotonic() < deadline, "the second app's listener did not connect"
            await asyncio.sleep(0.05)
        assert (await elsewhere.get(PROTECTED, headers=bearer)).status_code == 200
        await revoke(client, registered)
        deadline = time.monotonic() + 5
        while (await elsewhere.get(PROTECTED, headers=bearer)).status_code != 401:
            assert time.monotonic() < deadline, "the other app still accepts a revoked client's token"
            await asyncio.sleep(0.02)


@NEEDS_POSTGRES
async def test_an_app_that_is_not_listening_reads_the_revoked_set_on_every_use(client, settings):
    """Without its listener (starting, or the connection lost), a worker cannot trust its copy: it reads."""
    other = create_app(settings)  # its lifespan is not run: no listener
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://other"
    ) as elsewhere:
        registered = await register(client)
        bearer = await issue(client, registered)
        assert (await elsewhere.get(PROTECTED, headers=bearer)).status_code == 200
        await revoke(client, registered)
        assert_problem(await elsewhere.get(PROTECTED, headers=bearer), 401)
    await other.state.engine.dispose()


@NEEDS_POSTGRES
async def test_two_server_processes_refuse_a_revoked_clients_token(tmp_path):
    """Two uvicorn processes on one PostgreSQL database: the token is issued and used on both, the client
    revoked through one, and both refuse the token within moments."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with live_server(tmp_path / "a") as first, live_server(tmp_path / "b") as second:
        async with (
            httpx.AsyncClient(base_url=first.url, timeout=10) as one,
            httpx.AsyncClient(base_url=second.url, timeout=10) as two,
        ):
            registered = await register(one)
            bearer = await issue(two, registered)
            await asyncio.sleep(1)  # both listeners connected (they connect at start-up)
            for http in (one, two):
                for _ in range(2):
                    assert (await http.get(PROTECTED, headers=bearer)).status_code == 200
            await revoke(two, registered)
            assert_problem(await two.get(PROTECTED, headers=bearer), 401)  # the revoking worker: at once
            deadline = time.monotonic() + 5
            while (await one.get(PROTECTED, headers=bearer)).status_code != 401:
                assert time.monotonic() < deadline, "the other process still accepts a revoked client's token"
                await asyncio.sleep(0.02)
