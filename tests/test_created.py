"""Every creation says where the created resource is (`Location`), on a retry with the same Idempotency-Key too,
and the resource is there: the reads that Locations point at (one data item, one consent event, one disclosure,
one cookie) answer with what was created, to whom may read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.support import (
    ADMIN,
    REQUEST_MANAGER,
    add_item,
    as_processor,
    as_subject,
    assert_problem,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
    unique_email,
)
from tests.test_catalog import new_purpose, notice

READER = staff("subjects:read", "consents:read", "requests:read", "disclosures:read")


async def located(response: httpx.Response, prefix: str, key: str = "id") -> str:
    """The Location of a creation: the prefix and the created resource's own key."""
    assert response.status_code in (201, 202), response.text
    assert response.headers["location"] == f"{prefix}/{response.json()[key]}", response.headers
    return response.headers["location"]


async def test_register_data_consent_and_request_each_say_where_they_are(client):
    registered = await client.post("/v1/subjects", json={"email": unique_email()}, headers=staff("subjects:write"))
    subject = await located(registered, "/v1/subjects")
    assert (await client.get(subject, headers=READER)).json() == registered.json()

    item = await client.post(f"{subject}/data", headers=staff("subjects:write"),
                             json={"category": "phone", "value": "070-123 45 67", "source": "direct",
                                   "purpose": "service"})
    found = await client.get(await located(item, f"{subject}/data"), headers=READER)
    assert found.status_code == 200 and found.json() == item.json()

    event = await client.post(f"{subject}/consents", headers=staff("consents:write"),
                              json={"purpose": "newsletter", "status": "granted", "channel": "crm"})
    found = await client.get(await located(event, f"{subject}/consents/history"), headers=READER)
    assert found.status_code == 200
    assert {k: found.json()[k] for k in event.json()} == event.json() and found.json()["evidence"] is not None

    filed = await client.post("/v1/rights-requests", json={"type": "access", "subject_id": registered.json()["id"]},
                              headers=REQUEST_MANAGER)
    assert (await client.get(await located(filed, "/v1/rights-requests"), headers=READER)).json()["id"] == (
        filed.json()["id"])


async def test_a_replay_carries_the_same_location(client):
    body, key = {"email": unique_email()}, {"Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/subjects", json=body, headers=staff("subjects:write") | key)
    again = await client.post("/v1/subjects", json=body, headers=staff("subjects:write") | key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.status_code == 201 and again.headers["location"] == first.headers["location"] == (
        f"/v1/subjects/{first.json()['id']}")

    sid = first.json()["id"]
    item = {"category": "phone", "value": "070-765 43 21", "source": "direct", "purpose": "service"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first, again = [await client.post(f"/v1/subjects/{sid}/data", json=item, headers=staff("subjects:write") | key)
                    for _ in range(2)]
    assert again.headers["location"] == first.headers["location"] == f"/v1/subjects/{sid}/data/{first.json()['id']}"


async def test_processors_disclosures_holds_and_runs_say_where_they_are(client):
    processor = await client.post("/v1/processors", headers=ADMIN, json={
        "name": f"Processor {uuid.uuid4().hex[:6]}", "dpa_reference": "DPA-1", "country": "SE",
        "contact_email": "privacy@processor.example"})
    assert (await client.get(await located(processor, "/v1/processors"), headers=staff())).status_code == 200

    subject = await make_subject(client)
    await report_disclosure(client, processor.json()["id"], subject["id"], ["email"], "service")  # disclosed to it
    # A purpose on contract: no consent to miss, so the processor's view and the staff's agree (flags differ).
    disclosure = await client.post("/v1/disclosures", headers=as_processor(processor.json()["id"]),
                                   json={"subject_id": subject["id"], "categories": ["email"], "purpose": "service"})
    where = await located(disclosure, "/v1/disclosures")
    assert (await client.get(where, headers=READER)).json() == disclosure.json()

    hold = await client.post(f"/v1/subjects/{subject['id']}/legal-holds", headers=ADMIN,
                             json={"reason": "Tvist om faktura 2026-114."})
    assert (await client.get(await located(hold, "/v1/legal-holds"), headers=ADMIN)).json() == hold.json()
    lifted = await client.post(f"/v1/legal-holds/{hold.json()['id']}/lift", headers=ADMIN, json={"reason": "Löst."})
    assert lifted.status_code == 200

    run = await client.post("/v1/retention/runs", json={"dry_run": True}, headers=ADMIN)
    assert (await client.get(await located(run, "/v1/retention/runs"), headers=ADMIN)).status_code == 200


async def test_admin_creations_say_where_they_are(client):
    code = f"located_{uuid.uuid4().hex[:6]}"
    purpose = await client.post("/v1/purposes", json=new_purpose(code), headers=ADMIN)
    assert (await client.get(await located(purpose, "/v1/purposes", "code"))).json()["code"] == code

    version = f"l-{uuid.uuid4().hex[:8]}"
    policy = await client.post("/v1/policies", json=notice(version, datetime.now(UTC) + timedelta(days=30)),
                               headers=ADMIN)
    assert (await client.get(await located(policy, "/v1/policies", "version"))).json()["version"] == version

    body = {"name": f"_located_{uuid.uuid4().hex[:8]}", "provider": "WeSafe", "category": "preferences",
            "duration": {"sv": "1 dag", "en": "1 day"}, "description": {"sv": "Prov.", "en": "A test."}}
    cookie = await client.post("/v1/cookies", json=body, headers=ADMIN)
    where = await located(cookie, "/v1/cookies")
    found = await client.get(where)  # public, as the declaration is
    assert found.status_code == 200 and found.json() == cookie.json()
    assert found.headers["cache-control"].startswith("public")
    assert (await client.delete(where, headers=ADMIN)).status_code == 204
    assert_problem(await client.get(where), 404)

    endpoint = await client.post("/v1/webhook-endpoints", headers=ADMIN,
                                 json={"url": "https://93.184.216.34/hook", "event_types": ["consent.granted"]})
    where = await located(endpoint, "/v1/webhook-endpoints")
    assert (await client.get(where, headers=ADMIN)).json()["id"] == endpoint.json()["id"]
    assert (await client.delete(where, headers=ADMIN)).status_code == 204

    api_client = await client.post("/v1/clients", json={"name": "CRM", "role": "staff"}, headers=ADMIN)
    where = await located(api_client, "/v1/clients", "client_id")
    read = (await client.get(where, headers=ADMIN)).json()
    assert read["client_id"] == api_client.json()["client_id"] and "client_secret" not in read
    assert (await client.delete(where, headers=ADMIN)).status_code == 204
    assert (await client.get(where, headers=ADMIN)).json()["revoked_at"] is not None


async def test_a_visitors_choice_says_where_it_is(app):
    # Its own address: the per-address limit on choices is not what is tested here.
    transport = httpx.ASGITransport(app=app, client=("192.0.2.71", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        chosen = await browser.post("/v1/visitor-consents", json={"choices": {"analytics": True}})
        where = await located(chosen, "/v1/visitor-consents", "visitor_id")
        assert (await browser.get(where)).json()["choices"]["analytics"] is True


async def test_one_data_item_is_read_as_the_list_shows_it_and_audited(client):
    subject, other = await make_subject(client), await make_subject(client)
    card = await add_item(client, subject["id"], category="payment", value="5555 4444 3333 2222", purpose="billing")
    url = f"/v1/subjects/{subject['id']}/data/{card['id']}"
    masked = await client.get(url, headers=staff("subjects:read"))
    assert masked.status_code == 200 and masked.json()["value"].endswith("2222")
    assert "5555" not in masked.text and masked.headers["cache-control"] == "no-store"
    assert (await client.get(url, headers=staff("subjects:read", "sensitive:read"))).json()["value"] == (
        "5555 4444 3333 2222")
    assert (await client.get(url, headers=as_subject(subject["id"]))).status_code == 200
    assert_problem(await client.get(url, headers=as_subject(other["id"])), 404)
    assert_problem(await client.get(f"/v1/subjects/{other['id']}/data/{card['id']}", headers=staff("subjects:read")),
                   404)
    assert_problem(await client.get(url, headers=staff("consents:read")), 403)
    audit = await client.get("/v1/audit-events", params={"subject_id": subject["id"]}, headers=staff("audit:read"))
    assert {"action": "personal_data.read", "target": card["id"]} in [
        {"action": e["action"], "target": e.get("target")} for e in audit.json()["items"]]


async def test_one_consent_event_only_within_reach(client):
    subject, other = await make_subject(client), await make_subject(client)
    event = await client.post(f"/v1/subjects/{subject['id']}/consents", headers=as_subject(subject["id"]),
                              json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    url = event.headers["location"]
    assert (await client.get(url, headers=as_subject(subject["id"]))).json()["id"] == event.json()["id"]
    assert_problem(await client.get(url, headers=as_subject(other["id"])), 404)
    assert_problem(await client.get(url.replace(subject["id"], other["id"]), headers=READER), 404)
    assert_problem(await client.get(url, headers=staff("subjects:read")), 403)


async def test_one_disclosure_for_its_recipient_and_readers_of_the_log(client):
    mine, theirs = await make_processor(client), await make_processor(client)
    subject = await make_subject(client)
    disclosure = await report_disclosure(client, mine["id"], subject["id"], ["email"], "newsletter")
    url = f"/v1/disclosures/{disclosure['id']}"
    assert (await client.get(url, headers=as_processor(mine["id"]))).json()["recipient"]["id"] == mine["id"]
    assert_problem(await client.get(url, headers=as_processor(theirs["id"])), 404)
    assert_problem(await client.get(url, headers=as_subject(subject["id"])), 403)
    assert_problem(await client.get(url, headers=staff("disclosures:write")), 403)
    assert_problem(await client.get(f"/v1/disclosures/{uuid.uuid4()}", headers=READER), 404)
