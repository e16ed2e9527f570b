"""A processor's integration, with the tools a processor would pick: authlib for the client-credentials grant
and the standardwebhooks package for verifying deliveries, against a real HTTP receiver on loopback."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import ADMIN, complete_request, make_processor, make_subject, report_disclosure
from tests.test_webhooks import Receiver, hooks, hooks_app, receiver, work  # noqa: F401 - fixtures

TOKEN_URL = "http://t/v1/auth/token"


async def processor_client(app, processor_id: str) -> tuple[str, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        created = await http.post("/v1/clients", headers=ADMIN,
                                  json={"name": "Mailer integration", "role": "processor", "processor_id": processor_id})
    assert created.status_code == 201, created.text
    return created.json()["client_id"], created.json()["client_secret"]


def oauth(app, client_id: str, secret: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(client_id, secret, token_endpoint=TOKEN_URL, base_url="http://t",
                             transport=httpx.ASGITransport(app=app))


async def test_a_processor_integrates_with_authlib_and_standard_webhooks(hooks, hooks_app, receiver):
    processor = await make_processor(hooks, webhook_url=receiver.url)
    client_id, secret = await processor_client(hooks_app, processor["id"])

    # Wrong credentials: authlib shows the service's reason (RFC 6749 §5.2 error_description).
    async with oauth(hooks_app, client_id, "wrong") as refused:
        with pytest.raises(OAuthError) as failure:
            await refused.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert failure.value.error == "invalid_client" and failure.value.description

    async with oauth(hooks_app, client_id, secret) as api:
        token = await api.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["expires_in"] > 0

        # Its own endpoint: it also wants to hear when a task is completed.
        [endpoint] = (await api.get("/v1/webhook-endpoints")).json()["items"]
        assert endpoint["processor_id"] == processor["id"]
        changed = await api.patch(f"/v1/webhook-endpoints/{endpoint['id']}",
                                  json={"event_types": ["processor_task.created", "processor_task.completed"]})
        assert changed.status_code == 200 and len(changed.json()["event_types"]) == 2
        outside = await api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"event_types": ["consent.granted"]})
        assert outside.status_code == 422

        subject = await make_subject(hooks, name="Cecilia Ceder")
        await report_disclosure(hooks, processor["id"], subject["id"], ["email"], "newsletter")  # WeSafe disclosed it
        reported = await api.post("/v1/disclosures", json={"subject_id": subject["id"], "categories": ["email", "name"],
                                                            "purpose": "newsletter"})
        assert reported.status_code == 201, reported.text
        request = await complete_request(hooks, subject["id"], "erasure")
        await work(hooks_app)

        [(headers, body)] = receiver.received
        event = Webhook(processor["webhook_secret"]).verify(body, headers)
        assert event["type"] == "processor_task.created" and event["timestamp"].endswith("Z")
        data = event["data"]
        assert data["due_at"] == request["due_at"] and data["created_at"].endswith("Z")
        assert data["categories"] == ["email", "name"] and "Cecilia" not in body.decode()  # no personal data rides

        task = (await api.get(f"/v1/processor-tasks/{data['task_id']}")).json()
        assert task["details"]["identifiers"] == {"email": [subject["email"]], "name": ["Cecilia Ceder"]}
        first = await api.post(f"/v1/processor-tasks/{task['id']}/complete", json={"note": "Removed."})
        again = await api.post(f"/v1/processor-tasks/{task['id']}/complete", json={"note": "Removed."})
        assert first.status_code == again.status_code == 200 and first.json() == again.json()

        # A new secret; the completion is signed with it, and for a day with the old one too (the receiver
        # switches when it is ready), but with no other.
        rotated = await api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["previous_secret_valid_until"].endswith("Z")
        await work(hooks_app)
        completed_headers, completed_body = receiver.received[-1]
        assert Webhook(rotated.json()["secret"]).verify(completed_body, completed_headers)["type"] == (
            "processor_task.completed")
        assert Webhook(processor["webhook_secret"]).verify(completed_body, completed_headers)["type"] == (
            "processor_task.completed")
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 44).verify(completed_body, completed_headers)

        # Its own deliveries, and one sent again: same webhook-id, so it can tell.
        deliveries = (await api.get("/v1/webhook-deliveries")).json()["items"]
        assert {d["endpoint_id"] for d in deliveries} == {endpoint["id"]} and len(deliveries) == 2
        [created] = [d for d in deliveries
                     if (await api.get(f"/v1/webhook-deliveries/{d['id']}")).json()["event_type"]
                     == "processor_task.created"]
        again_sent = await api.post(f"/v1/webhook-deliveries/{created['id']}/redeliver")
        assert again_sent.status_code == 202 and again_sent.json()["status"] == "pending"
        await work(hooks_app)
        assert receiver.received[-1][0]["webhook-id"] in {h["webhook-id"] for h, _ in receiver.received[:-1]}

    # Another processor reaches none of it.
    other = await make_processor(hooks)
    other_id, other_secret = await processor_client(hooks_app, other["id"])
    async with oauth(hooks_app, other_id, other_secret) as stranger:
        await stranger.fetch_token(TOKEN_URL, grant_type="client_credentials")
        assert (await stranger.get(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
        assert (await stranger.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")).status_code == 404
        assert (await stranger.post(f"/v1/webhook-deliveries/{created['id']}/redeliver")).status_code == 404
        assert (await stranger.get("/v1/webhook-deliveries")).json()["items"] == []
        assert (await stranger.get(f"/v1/processor-tasks/{task['id']}")).status_code == 404
