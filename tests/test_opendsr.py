"""OpenDSR v2 (github.com/opengdpr/OpenDSR, specification.md), mounted at /opendsr/v2: a second door into the
rights-request workflow. The requests are the specification's own examples (sections 6.4, 7.2, 8.2, 9.1), with
a fresh subject_request_id and the test's own subject; the callback goes through the webhook worker to a real
receiver on loopback (an app that allows private webhook addresses, as tests/test_webhook_delivery.py's)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from jose import jws
from sqlalchemy import select

from app.main import create_app
from app.opendsr import service as opendsr
from app.rights_requests.models import RightsRequest
from app.webhooks import delivery
from app.webhooks.models import WebhookEndpoint
from tests.support import (
    ADMIN,
    REQUEST_MANAGER,
    app_settings,
    as_processor,
    as_subject,
    assert_problem,
    make_subject,
    staff,
    unique_email,
)
from tests.webhook_receiver import Receiver

BASE = "/opendsr/v2"
READER = staff("requests:read")

# Section 7.2, as published (its trailing comma aside).
SPEC_REQUEST: dict[str, Any] = {
    "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
    "subject_request_type": "erasure",
    "submitted_time": "2018-10-02T15:00:00Z",
    "subject_identities": [
        {"identity_type": "email", "identity_value": "johndoe@example.com", "identity_format": "raw"}
    ],
    "api_version": "2.0",
    "status_callback_urls": ["https://examplecontroller.com/opendsr/callbacks"],
    "extensions": {
        "example-processor.com": {"foo-processor-custom-id": 123456, "property_id": "123456"},
        "example-other-processor.com": {"foo-other-processor-custom-id": 654321},
    },
}


def spec_request(
    email: str, *, type_: str = "erasure", callbacks: list[str] | None = None, **changes: Any
) -> dict:
    """The specification's example request, for `email`, under a fresh subject_request_id."""
    body = copy.deepcopy(SPEC_REQUEST)
    body["subject_request_id"] = str(uuid.uuid4())
    body["subject_request_type"] = type_
    body["subject_identities"][0]["identity_value"] = email
    body["regulation"] = "gdpr"
    if callbacks is None:
        body.pop("status_callback_urls")
    else:
        body["status_callback_urls"] = callbacks
    return body | changes


async def send(client: httpx.AsyncClient, body: dict, *, path: str = "/requests", headers=REQUEST_MANAGER):
    return await client.post(
        BASE + path, content=json.dumps(body), headers={**headers, "content-type": "application/json"}
    )


async def rights_request(db, subject_request_id: str) -> RightsRequest:
    async with db() as session:
        found = await session.execute(
            select(RightsRequest).where(
                RightsRequest.origin == "opendsr", RightsRequest.external_id == subject_request_id
            )
        )
        return found.scalars().one()


async def count_filed(db, subject_request_id: str) -> int:
    async with db() as session:
        found = await session.execute(
            select(RightsRequest.id).where(RightsRequest.external_id == subject_request_id)
        )
        return len(found.all())


async def act(client, request_id, action: str, reason: str | None = None) -> None:
    body = {"action": action} | ({"reason": reason} if reason else {})
    response = await client.post(
        f"/v1/rights-requests/{request_id}/actions", json=body, headers=REQUEST_MANAGER
    )
    assert response.status_code == 200, response.text


async def verified(client: httpx.AsyncClient, signature: str) -> dict:
    """The payload of an OpenDSR signature (a compact JWS), verified with the published key."""
    keys = (await client.get("/v1/consent-receipts/jwks.json")).json()["keys"]
    kid = jws.get_unverified_header(signature)["kid"]
    [key] = [k for k in keys if k["kid"] == kid]
    return json.loads(jws.verify(signature, key, algorithms=["ES256"]))


async def status_of(client, subject_request_id: str, path: str = "/requests") -> dict:
    response = await client.get(f"{BASE}{path}/{subject_request_id}", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert await verified(client, response.headers["x-opendsr-signature"]) == body
    return body


# --- discovery
# -----------------------------------------------------------------------------------------------------


async def test_discovery_says_what_is_supported_and_where_the_signing_key_is(client):
    response = await client.get(f"{BASE}/discovery", headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["api_version"] == "2.0"
    assert body["supported_identities"] == [{"identity_type": "email", "identity_format": "raw"}]
    assert sorted(body["supported_subject_request_types"]) == ["access", "erasure", "portability"]
    assert body["processor_certificate"].endswith("/v1/consent-receipts/jwks.json")
    assert response.headers["x-opendsr-processor-domain"] == response.headers["x-opengdpr-processor-domain"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/discovery"),
        ("POST", "/requests"),
        ("GET", f"/requests/{uuid.uuid4()}"),
        ("DELETE", f"/requests/{uuid.uuid4()}"),
        ("POST", "/opengdpr_requests"),
    ],
)
async def test_only_staff_clients_with_the_request_scopes_may_call(client, method, path):
    assert_problem(await client.request(method, BASE + path), 401)
    subject = await make_subject(client)
    for headers in (as_subject(subject["id"]), as_processor(uuid.uuid4()), staff("subjects:read")):
        assert_problem(await client.request(method, BASE + path, headers=headers), 403)
    if method != "GET":  # a reader may ask for the status, not file or cancel
        assert_problem(await client.request(method, BASE + path, headers=READER), 403)


# --- requests
# ------------------------------------------------------------------------------------------------------


async def test_the_specs_erasure_request_is_filed_as_a_rights_request_for_the_subject(client, db, mails):
    subject = await make_subject(client)
    body = spec_request(subject["email"])
    raw = json.dumps(body)
    response = await client.post(
        f"{BASE}/requests", content=raw, headers={**REQUEST_MANAGER, "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {
        "controller_id",
        "expected_completion_time",
        "received_time",
        "encoded_request",
        "subject_request_id",
        "processor_signature",
    }
    assert created["subject_request_id"] == body["subject_request_id"]
    assert base64.b64decode(created["encoded_request"]).decode() == raw
    assert response.headers["location"] == f"{BASE}/requests/{body['subject_request_id']}"
    # Signed: the header and processor_signature are one JWS over the body without the signature.
    signature = created.pop("processor_signature")
    assert response.headers["x-opendsr-signature"] == response.headers["x-opengdpr-signature"] == signature
    assert await verified(client, signature) == created

    filed = await rights_request(db, body["subject_request_id"])
    assert (str(filed.subject_id), filed.type, filed.status) == (subject["id"], "erasure", "received")
    assert "OpenDSR" in (filed.details or "") and filed.requester_email is None
    read = (await client.get(f"/v1/rights-requests/{filed.id}", headers=REQUEST_MANAGER)).json()
    assert (
        read["due_at"] == created["expected_completion_time"]
        and read["received_at"] == created["received_time"]
    )
    assert [m.to for m in mails] == [subject["email"]]  # told it was received, as from any door

    # The erasure is carried out as any: completing it erases the subject.
    for action in ("verify", "start", "complete"):
        await act(client, filed.id, action)
    assert (await status_of(client, body["subject_request_id"]))["request_status"] == "completed"
    assert (await client.get(f"/v1/subjects/{subject['id']}", headers=staff("subjects:read"))).json()[
        "status"
    ] == "erased"


@pytest.mark.parametrize("type_", ["access", "portability"])
async def test_access_and_portability_requests_end_with_a_results_url_to_the_package(client, db, type_):
    subject = await make_subject(client)
    body = spec_request(subject["email"].upper(), type_=type_)  # matched by the address, whatever its case
    assert (await send(client, body)).status_code == 201
    filed = await rights_request(db, body["subject_request_id"])
    assert (str(filed.subject_id), filed.type) == (subject["id"], type_)
    assert "results_url" not in await status_of(client, body["subject_request_id"])
    for action in ("verify", "start", "complete"):
        await act(client, filed.id, action)
    status = await status_of(client, body["subject_request_id"])
    assert status["request_status"] == "completed"
    path = status["results_url"].split("://", 1)[1].partition("/")[2]
    assert path == f"v1/rights-requests/{filed.id}/package"
    package = await client.get(f"/{path}", headers=REQUEST_MANAGER)
    assert package.status_code == 200 and package.json()["subject"]["id"] == subject["id"]


async def test_the_status_follows_the_rights_request(client, db):
    """Section 8: received and verified are pending; in_progress; completed; a rejection is cancelled."""
    subject = await make_subject(client)
    seen = []
    for final in ("complete", "reject"):
        body = spec_request(subject["email"], type_="access")
        assert (await send(client, body)).status_code == 201
        filed = await rights_request(db, body["subject_request_id"])
        status = await status_of(client, body["subject_request_id"])
        assert set(status) >= {
            "controller_id",
            "expected_completion_time",
            "subject_request_id",
            "request_status",
        }
        assert status["subject_request_id"] == body["subject_request_id"] and status["api_version"] == "2.0"
        seen = [status["request_status"]]
        for action in ("verify", "start", final):
            await act(client, filed.id, action, "Not ours to answer" if action == "reject" else None)
            seen.append((await status_of(client, body["subject_request_id"]))["request_status"])
        assert seen == [
            "pending",
            "pending",
            "in_progress",
            "completed" if final == "complete" else "cancelled",
        ]


async def test_an_unknown_request_id_is_a_404_problem(client):
    for method in ("GET", "DELETE"):
        assert_problem(
            await client.request(method, f"{BASE}/requests/{uuid.uuid4()}", headers=REQUEST_MANAGER), 404
        )
    assert_problem(await client.get(f"{BASE}/requests/not-a-uuid", headers=REQUEST_MANAGER), 422)


async def test_a_subject_request_id_is_received_once(client, db):
    subject = await make_subject(client)
    body = spec_request(subject["email"])
    assert (await send(client, body)).status_code == 201
    again = await send(client, body | {"subject_request_type": "access"})
    assert_problem(again, 409)
    assert await count_filed(db, body["subject_request_id"]) == 1


async def test_an_address_registered_to_nobody_is_filed_unmatched_and_answered_no_data(client, db, mails):
    email = unique_email("stranger")
    body = spec_request(email, type_="access")
    assert (await send(client, body)).status_code == 201
    filed = await rights_request(db, body["subject_request_id"])
    assert filed.subject_id is None and filed.requester_email == email
    for action in ("verify", "start", "complete"):
        await act(client, filed.id, action)
    status = await status_of(client, body["subject_request_id"])
    assert status["request_status"] == "completed" and "results_url" not in status
    assert [m.to for m in mails] == [email, email]  # received; no personal data is held


# --- cancellation
# --------------------------------------------------------------------------------------------------


async def test_a_pending_request_is_cancelled(client, db, mails):
    subject = await make_subject(client)
    for steps in ([], ["verify"]):  # received and verified are both pending
        body = spec_request(subject["email"])
        assert (await send(client, body)).status_code == 201
        filed = await rights_request(db, body["subject_request_id"])
        for action in steps:
            await act(client, filed.id, action)
        mails.clear()
        response = await client.delete(
            f"{BASE}/requests/{body['subject_request_id']}", headers=REQUEST_MANAGER
        )
        assert response.status_code == 202, response.text
        cancelled = response.json()
        assert (
            cancelled["subject_request_id"] == body["subject_request_id"]
            and cancelled["api_version"] == "2.0"
        )
        assert set(cancelled) == {
            "controller_id",
            "subject_request_id",
            "received_time",
            "api_version",
            "processor_signature",
        }
        signature = cancelled.pop("processor_signature")
        assert await verified(client, signature) == cancelled
        assert (await status_of(client, body["subject_request_id"]))["request_status"] == "cancelled"
        closed = await rights_request(db, body["subject_request_id"])
        assert closed.status == "rejected" and "OpenDSR" in (closed.rejection_reason or "")
        assert mails == []  # the controller that cancelled tells the subject
    # The subject was not erased: nothing was carried out.
    assert (await client.get(f"/v1/subjects/{subject['id']}", headers=staff("subjects:read"))).json()[
        "status"
    ] != "erased"


async def test_a_request_being_processed_or_closed_cannot_be_cancelled(client, db):
    subject = await make_subject(client)
    body = spec_request(subject["email"])
    assert (await send(client, body)).status_code == 201
    filed = await rights_request(db, body["subject_request_id"])
    url = f"{BASE}/requests/{body['subject_request_id']}"
    for action, status in (("verify", None), ("start", "in_progress"), ("complete", "completed")):
        await act(client, filed.id, action)
        if status is None:
            continue
        problem = assert_problem(await client.delete(url, headers=REQUEST_MANAGER), 409)
        assert status in problem["detail"]
        assert (await status_of(client, body["subject_request_id"]))["request_status"] == status


async def test_a_cancellation_that_loses_the_race_to_a_start_is_refused_and_changes_nothing(
    client, db, monkeypatch
):
    """The status is checked again under the request's lock: a start that slipped in between the read and
    the cancellation wins, and the cancellation is rolled back whole."""
    subject = await make_subject(client)
    body = spec_request(subject["email"])
    assert (await send(client, body)).status_code == 201
    stale = await rights_request(db, body["subject_request_id"])  # read while pending
    for action in ("verify", "start"):
        await act(client, stale.id, action)

    async def read_before_the_start(_session, _subject_request_id):
        return stale

    monkeypatch.setattr(opendsr, "_find", read_before_the_start)
    url = f"{BASE}/requests/{body['subject_request_id']}"
    assert "in_progress" in assert_problem(await client.delete(url, headers=REQUEST_MANAGER), 409)["detail"]
    monkeypatch.undo()
    after = await rights_request(db, body["subject_request_id"])
    assert after.status == "in_progress" and after.rejection_reason is None
    history = (await client.get(f"/v1/rights-requests/{stale.id}", headers=REQUEST_MANAGER)).json()["history"]
    assert [entry["action"] for entry in history] == ["filed", "verify", "start"]


# --- OpenGDPR, the former name
# -------------------------------------------------------------------------------------


async def test_opengdpr_route_names_headers_and_fields_are_honoured(client, db):
    """Section 10.1: an OpenGDPR sender posts to /opengdpr_requests, sends no `regulation` (OpenGDPR 1.0 had
    none) and may send 0.1's top-level `property_id`; it reads the X-OpenGDPR-* headers."""
    subject = await make_subject(client)
    body = spec_request(subject["email"], type_="access", property_id="123456", api_version="1.0")
    del body["regulation"], body["extensions"]
    response = await send(client, body, path="/opengdpr_requests")
    assert response.status_code == 201, response.text
    assert await verified(client, response.headers["x-opengdpr-signature"]) == {
        k: v for k, v in response.json().items() if k != "processor_signature"
    }
    assert response.headers["x-opengdpr-processor-domain"]
    filed = await rights_request(db, body["subject_request_id"])
    assert (
        filed.type == "access" and str(filed.subject_id) == subject["id"] and "gdpr" in (filed.details or "")
    )
    assert (await status_of(client, body["subject_request_id"], "/opengdpr_requests"))[
        "request_status"
    ] == "pending"
    cancelled = await client.delete(
        f"{BASE}/opengdpr_requests/{body['subject_request_id']}", headers=REQUEST_MANAGER
    )
    assert cancelled.status_code == 202 and cancelled.headers["x-opengdpr-signature"]
    assert (await status_of(client, body["subject_request_id"]))["request_status"] == "cancelled"


# --- what is refused
# -----------------------------------------------------------------------------------------------

EMAIL = "refused.person@example.com"


def _without(key: str):
    return lambda body: {k: v for k, v in body.items() if k != key}


def _identities(*identities: tuple[str, str, str]):
    return lambda body: (
        body
        | {
            "subject_identities": [
                {"identity_type": t, "identity_value": v, "identity_format": f} for t, v, f in identities
            ]
        }
    )


BAD = {
    "no subject_request_id (the spec's 7.7)": _without("subject_request_id"),
    "no subject_request_type": _without("subject_request_type"),
    "no submitted_time": _without("submitted_time"),
    "a type the spec does not define": lambda b: b | {"subject_request_type": "rectification"},
    "ccpa": lambda b: b | {"regulation": "ccpa"},
    "an unknown regulation": lambda b: b | {"regulation": "pipeda"},
    "a subject_request_id that is no UUID": lambda b: b | {"subject_request_id": "12345"},
    "a UUID v1": lambda b: b | {"subject_request_id": str(uuid.uuid1())},
    "a submitted_time without a zone": lambda b: b | {"submitted_time": "2018-10-02T15:00:00"},
    "no identities": _without("subject_identities"),
    "empty identities": lambda b: b | {"subject_identities": []},
    "only an identity type not supported": _identities(("ios_advertising_id", "AEBE52E7-03EE-455A", "raw")),
    "a hashed e-mail": _identities(("email", "a" * 64, "sha256")),
    "an unknown identity type": _identities(("passport", "X123", "raw")),
    "an unknown identity format": _identities(("email", EMAIL, "rot13")),
    "two different e-mail addresses": _identities(
        ("email", EMAIL, "raw"), ("email", "other@example.com", "raw")
    ),
    "an address that is not one": _identities(("email", "refused-person", "raw")),
    "an address with a NUL byte": _identities(("email", "refused\u0000person@example.com", "raw")),
    "an address with a space inside": _identities(("email", "refused person@example.com", "raw")),
    "an address too long": _identities(("email", "a" * 320 + "@example.com", "raw")),
    "an unknown member": lambda b: b | {"subject_request_status": "pending"},
    "a loopback callback": lambda b: b | {"status_callback_urls": ["http://127.0.0.1:8080/callbacks"]},
    "a private callback": lambda b: b | {"status_callback_urls": ["https://10.0.0.5/callbacks"]},
    "a link-local callback": lambda b: (
        b | {"status_callback_urls": ["http://169.254.169.254/latest/meta-data"]}
    ),
    "an IPv6 loopback callback": lambda b: b | {"status_callback_urls": ["http://[::1]/callbacks"]},
    "a callback that is no URL": lambda b: b | {"status_callback_urls": ["ftp://examplecontroller.com/x"]},
    "too many callbacks": lambda b: b | {"status_callback_urls": ["https://1.1.1.1/c"] * 6},
}


@pytest.mark.parametrize("case", list(BAD))
async def test_a_request_it_cannot_take_is_a_400_in_the_specs_error_format_and_files_nothing(
    client, db, case
):
    body = BAD[case](spec_request(EMAIL))
    response = await send(client, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == 400 and error["message"]
    assert [set(e) for e in error["errors"]] == [{"domain", "reason", "message"}]
    assert EMAIL not in response.text  # no identity in an error (section 7.6)
    if isinstance(body.get("subject_request_id"), str):
        assert await count_filed(db, body["subject_request_id"]) == 0


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", b'{"subject_request_id": ', b"{}"])
async def test_a_body_that_is_no_request_object_is_a_400(client, raw):
    response = await client.post(
        f"{BASE}/requests", content=raw, headers={**REQUEST_MANAGER, "content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == 400


async def test_the_specs_missing_id_error_reads_as_its_example(client):
    response = await send(client, _without("subject_request_id")(spec_request(EMAIL)))
    assert "subject_request_id" in response.json()["error"]["message"]
    assert response.json()["error"]["errors"][0]["domain"] == "Validation"


# --- status callbacks, through the webhook worker
# -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def callback_app(database_url):
    """Loopback receivers allowed (development only: PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES)."""
    application = create_app(
        app_settings(
            database_url=database_url,
            log_level="WARNING",
            webhook_allow_private_addresses=True,
            webhook_timeout_seconds=5,
        )
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(callback_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=callback_app), base_url="http://t"
    ) as http:
        yield http


@pytest.fixture
async def receiver(callback_app, api) -> AsyncIterator[Receiver]:
    """A receiver on loopback; every endpoint that delivers to it is disabled after the test, so that later
    tests' events do not go there."""
    made = Receiver()
    yield made
    async with callback_app.state.sessionmaker() as session:
        found = await session.execute(select(WebhookEndpoint.id).where(WebhookEndpoint.url == made.url))
        ids = [str(i) for i in found.scalars().all()]
    for endpoint_id in ids:
        await api.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=ADMIN)
    made.close()


async def deliver(app) -> None:
    """The worker's rounds until idle, as `privacy worker` runs them."""
    async with delivery.http_client(app.state.settings) as http:
        for _ in range(10):
            if not await delivery.run_once(app.state.sessionmaker, app.state.settings, http):
                return


def callbacks_in(receiver: Receiver) -> list[tuple[dict[str, str], bytes]]:
    return [(headers, body) for headers, body in receiver.received]


async def test_status_callbacks_go_through_the_signed_webhooks_to_the_callback_url(
    callback_app, api, receiver
):
    """An admin registered the controller's callback URL for opendsr.status_changed (so the receiver holds its
    secret); each status change reaches it as the spec's callback object (8.7), with the OpenDSR headers and
    the webhook signature, and to no other endpoint."""
    registered = await api.post(
        "/v1/webhook-endpoints",
        headers=ADMIN,
        json={"url": receiver.url, "event_types": ["opendsr.status_changed"]},
    )
    assert registered.status_code == 201, registered.text
    secret = registered.json()["secret"]
    bystander = Receiver()  # subscribed to the same event type under another URL: not its callbacks
    other = await api.post(
        "/v1/webhook-endpoints",
        headers=ADMIN,
        json={"url": bystander.url, "event_types": ["opendsr.status_changed"]},
    )
    try:
        subject = await make_subject(api)
        body = spec_request(subject["email"], callbacks=[receiver.url])
        response = await send(api, body)
        assert response.status_code == 201, response.text
        await deliver(callback_app)
        filed = await rights_request(callback_app.state.sessionmaker, body["subject_request_id"])
        for action in ("verify", "start", "complete"):
            await act(api, filed.id, action)
            await deliver(callback_app)
    finally:
        await api.delete(f"/v1/webhook-endpoints/{other.json()['id']}", headers=ADMIN)
        bystander.close()
    assert bystander.received == []

    statuses = []
    for headers, raw in callbacks_in(receiver):
        callback = json.loads(raw)
        assert set(callback) == {
            "controller_id",
            "expected_completion_time",
            "status_callback_url",
            "subject_request_id",
            "request_status",
        }
        assert callback["status_callback_url"] == receiver.url
        assert callback["subject_request_id"] == body["subject_request_id"]
        assert callback["controller_id"] == response.json()["controller_id"]
        statuses.append(callback["request_status"])
        # The OpenDSR signature: a JWS by the published key over the callback object.
        assert await verified(api, headers["x-opendsr-signature"]) == callback
        assert headers["x-opendsr-processor-domain"] == headers["x-opengdpr-processor-domain"]
        # The webhook signature (Standard Webhooks), with the registered endpoint's secret.
        timestamp = int(headers["webhook-timestamp"])
        assert headers["webhook-signature"] == delivery.sign(secret, headers["webhook-id"], timestamp, raw)
    # Filed (pending), verified (still pending), started, completed: a callback for each move.
    assert statuses == ["pending", "pending", "in_progress", "completed"]


async def test_a_callback_url_nobody_registered_gets_an_endpoint_of_its_own_and_hears_of_the_cancellation(
    callback_app, api, receiver
):
    subject = await make_subject(api)
    body = spec_request(subject["email"], callbacks=[receiver.url, receiver.url])  # named twice, told once
    assert (await send(api, body)).status_code == 201
    filed = await rights_request(callback_app.state.sessionmaker, body["subject_request_id"])
    assert [c["url"] for c in filed.status_callbacks or []] == [receiver.url]
    endpoint = (
        await api.get(f"/v1/webhook-endpoints/{filed.status_callbacks[0]['endpoint_id']}", headers=ADMIN)
    ).json()
    assert endpoint["url"] == receiver.url and endpoint["event_types"] == ["opendsr.status_changed"]
    cancelled = await api.delete(f"{BASE}/requests/{body['subject_request_id']}", headers=REQUEST_MANAGER)
    assert cancelled.status_code == 202, cancelled.text
    await deliver(callback_app)
    assert [json.loads(raw)["request_status"] for _, raw in callbacks_in(receiver)] == [
        "pending",
        "cancelled",
    ]
