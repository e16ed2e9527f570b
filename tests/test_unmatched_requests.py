"""Rights requests from people who are not registered: matched to a subject by the proved address when one is
registered, else filed unmatched (requester_email), worked by staff, and answered "no personal data is held".

No route files them yet (the privacy center will): filing is called on the service, in the app's sessions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.principals import Principal
from app.core.errors import Unprocessable
from app.core.mail import Mail
from app.rights_requests import service
from app.rights_requests.models import RightsRequest
from app.rights_requests.schemas import RequestCreate, RequestRead
from app.webhooks.models import OutboxEvent
from tests.support import (
    REQUEST_MANAGER,
    as_subject,
    assert_problem,
    complete_request,
    make_subject,
    staff,
    unique_email,
)

CENTER = Principal.system("privacy-center")
NO_DATA = "No personal data about this person is held"


async def file_unregistered(db, email: str, **fields: Any) -> tuple[RequestRead, list[Mail]]:
    """What the privacy center does once the person has proved the address: one session, committed."""
    async with db() as session:
        filed = await service.file_unregistered(
            session, email, RequestCreate(**{"type": "access", **fields}), caller=CENTER
        )
        await session.commit()
    return filed


async def act(client, request_id: uuid.UUID | str, action: str, reason: str | None = None) -> dict[str, Any]:
    body = {"action": action} | ({"reason": reason} if reason else {})
    url = f"/v1/rights-requests/{request_id}/actions"
    response = await client.post(url, json=body, headers=REQUEST_MANAGER)
    assert response.status_code == 200, response.text
    return response.json()


async def audit_events(db, request_id: uuid.UUID) -> list[AuditEvent]:
    """The audit events about this request, in the order of their chain."""
    async with db() as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.target == str(request_id)).order_by(AuditEvent.seq)
        )
        return list(found.scalars().all())


async def listed(client, headers, **params: str) -> set[str]:
    """Every id the list gives, through all its pages."""
    ids: set[str] = set()
    cursor = None
    while True:
        query = {"limit": "500", **params} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/rights-requests", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids |= {r["id"] for r in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def test_an_unknown_address_files_an_unmatched_request(client, db):
    email = unique_email("stranger")
    request, mails = await file_unregistered(db, f"  {email.upper()} ", type="erasure", details="Radera mig.")
    assert request.subject_id is None and request.requester_email == email
    assert request.status == "received" and request.history[0].action == "filed"
    assert (request.history[0].actor, request.history[0].role) == ("privacy-center", "system")
    [mail] = mails
    assert mail.to == email and "Vi har tagit emot din begäran" in mail.subject and "answer by" in mail.body

    seen = await client.get(f"/v1/rights-requests/{request.id}", headers=staff("requests:read"))
    assert seen.status_code == 200
    assert seen.json()["subject_id"] is None and seen.json()["requester_email"] == email
    assert seen.json()["due_at"] == request.due_at.isoformat().replace("+00:00", "Z")

    matched = await file_unregistered(db, (await make_subject(client))["email"])
    reader = staff("requests:read")
    unmatched_ids = await listed(client, reader, unmatched="true")
    matched_ids = await listed(client, reader, unmatched="false")
    assert str(request.id) in unmatched_ids and str(request.id) not in matched_ids
    assert str(matched[0].id) in matched_ids and str(matched[0].id) not in unmatched_ids
    assert {str(request.id), str(matched[0].id)} <= await listed(client, reader)


async def test_the_filing_is_audited_on_the_global_chain_and_announced(db):
    request, _ = await file_unregistered(db, unique_email("stranger"))
    [event] = await audit_events(db, request.id)
    async with db() as session:
        unmatched = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.type == "rights_request.received", OutboxEvent.subject_id.is_(None)))).scalars().all()
    assert (event.action, event.chain, event.subject_id) == ("rights_request.filed", "global", None)
    assert (event.actor, event.role) == ("privacy-center", "system")
    [announced] = [e for e in unmatched if e.payload["request_id"] == str(request.id)]
    assert announced.payload["subject_id"] is None and announced.payload["status"] == "received"


async def test_a_registered_address_files_for_its_subject(client, db):
    subject = await make_subject(client)
    request, mails = await file_unregistered(db, subject["email"].upper(), subject_id=None)
    assert str(request.subject_id) == subject["id"] and request.requester_email is None
    [mail] = mails
    assert mail.to == subject["email"]
    mine = await client.get(f"/v1/rights-requests/{request.id}", headers=as_subject(subject["id"]))
    assert mine.status_code == 200 and mine.json()["subject_id"] == subject["id"]
    assert str(request.id) in await listed(client, as_subject(subject["id"]))
    assert str(request.id) in await listed(client, staff("requests:read"), unmatched="false")
    [event] = await audit_events(db, request.id)
    assert event.chain == subject["id"]


async def test_an_erased_subjects_address_files_unmatched(client, db):
    subject = await make_subject(client)
    await complete_request(client, subject["id"], "erasure")
    request, mails = await file_unregistered(db, subject["email"])
    assert request.subject_id is None and request.requester_email == subject["email"].lower()
    assert [m.to for m in mails] == [subject["email"].lower()]


async def test_the_same_validation_as_any_filing(db):
    email = unique_email("stranger")
    with pytest.raises(Unprocessable):
        await file_unregistered(db, email, type="objection")
    with pytest.raises(Unprocessable):
        await file_unregistered(db, email, type="objection", purpose="no_such_purpose")
    async with db() as session:
        filed = await session.execute(select(RightsRequest.id).where(RightsRequest.requester_email == email))
        assert filed.first() is None


async def test_completing_answers_that_no_data_is_held(client, db, mails):
    email = unique_email("stranger")
    request, _ = await file_unregistered(db, email, type="erasure")
    await act(client, request.id, "verify")
    await act(client, request.id, "start")
    done = await act(client, request.id, "complete")
    assert done["status"] == "completed" and done["closed_at"] and done["subject_id"] is None
    assert done["history"][-1]["reason"] == NO_DATA and done["history"][-1]["to_status"] == "completed"
    [mail] = mails
    assert mail.to == email
    assert mail.subject == "Vi har inga personuppgifter om dig / We hold no personal data about you"
    assert mail.body.index("inga personuppgifter") < mail.body.index("no personal data")  # Swedish first
    assert "IMY" in mail.body and "Integritetsskyddsmyndigheten" in mail.body
    events = await audit_events(db, request.id)
    actions, chains = [e.action for e in events], {e.chain for e in events}
    assert actions == ["rights_request.filed", "rights_request.verify", "rights_request.start",
                       "rights_request.complete"]
    assert chains == {"global"}


async def test_staff_reason_is_kept_and_extend_and_reject_mail_the_requester(client, db, mails):
    email = unique_email("stranger")
    answered, _ = await file_unregistered(db, email)
    await act(client, answered.id, "verify")
    await act(client, answered.id, "start")
    done = await act(client, answered.id, "complete", "Sökt på adressen och på namnet: inget fanns.")
    assert done["history"][-1]["reason"] == "Sökt på adressen och på namnet: inget fanns."

    refused, _ = await file_unregistered(db, email)
    extended = await act(client, refused.id, "extend", "Många system att söka i.")
    assert extended["extended"] is True
    rejected = await act(client, refused.id, "reject", "Uppenbart ogrundad.")
    assert rejected["status"] == "rejected" and rejected["right_to_complain"]["authority"].endswith("(IMY)")
    assert [m.to for m in mails] == [email, email, email]
    assert "Många system att söka i." in mails[1].body and "Uppenbart ogrundad." in mails[2].body


async def test_an_unmatched_request_has_no_package(client, db):
    request, _ = await file_unregistered(db, unique_email("stranger"), type="access")
    for action in ("verify", "start", "complete"):
        await act(client, request.id, action)
    response = await client.get(f"/v1/rights-requests/{request.id}/package", headers=staff("requests:read"))
    assert assert_problem(response, 409)["title"] == "No personal data is held about this person"


async def test_a_subject_never_sees_unmatched_requests(client, db):
    subject = await make_subject(client)
    stranger, _ = await file_unregistered(db, unique_email("stranger"))
    own, _ = await file_unregistered(db, subject["email"])
    headers = as_subject(subject["id"])
    assert await listed(client, headers) == {str(own.id)}
    assert await listed(client, headers, unmatched="true") == set()
    assert_problem(await client.get(f"/v1/rights-requests/{stranger.id}", headers=headers), 404)
    assert_problem(await client.get(f"/v1/rights-requests/{stranger.id}/package", headers=headers), 404)
