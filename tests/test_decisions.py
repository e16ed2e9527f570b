"""Decisions: may we process this subject's data for this purpose?"""

from __future__ import annotations

import uuid

from sqlalchemy import event

from app.core.time import utc_now
from app.decisions import service
from app.decisions.models import Objection
from app.decisions.schemas import DecisionBatchResult
from app.subjects.models import Subject
from tests.support import as_subject, assert_problem, make_subject, staff

READER = staff("consents:read")
WRITER = staff("consents:write")


async def decide(client, subject_id: str, purpose: str) -> dict:
    response = await client.post("/v1/decisions", json={"subject_id": subject_id, "purpose": purpose}, headers=READER)
    assert response.status_code == 200, response.text
    return response.json()


async def consent(client, subject_id: str, purpose: str, status: str) -> None:
    response = await client.post(f"/v1/subjects/{subject_id}/consents", headers=WRITER,
                                 json={"purpose": purpose, "status": status, "channel": "api"})
    assert response.status_code == 201


async def set_status(db, subject_id: str, status: str) -> None:
    async with db() as session:
        (await session.get(Subject, uuid.UUID(subject_id))).status = status
        await session.commit()


async def test_consent_purposes_follow_the_latest_consent(client):
    subject = await make_subject(client)
    assert await decide(client, subject["id"], "newsletter") == {
        "allowed": False, "legal_basis": "consent", "reasons": ["no_consent"]}
    await consent(client, subject["id"], "newsletter", "granted")
    assert await decide(client, subject["id"], "newsletter") == {
        "allowed": True, "legal_basis": "consent", "reasons": ["consent_granted"]}
    await client.delete(f"/v1/subjects/{subject['id']}/consents/newsletter", headers=WRITER)
    assert (await decide(client, subject["id"], "newsletter"))["reasons"] == ["consent_withdrawn"]


async def test_other_bases_are_allowed_and_say_why(client):
    subject = await make_subject(client)
    assert await decide(client, subject["id"], "service") == {
        "allowed": True, "legal_basis": "contract", "reasons": ["basis_contract"]}
    assert (await decide(client, subject["id"], "customer_support"))["reasons"] == ["basis_legitimate_interest"]
    assert (await decide(client, subject["id"], "billing"))["reasons"] == ["basis_legal_obligation"]


async def test_restriction_leaves_only_legal_obligations(client, db):
    subject = await make_subject(client)
    await consent(client, subject["id"], "analytics", "granted")
    await set_status(db, subject["id"], "restricted")
    assert await decide(client, subject["id"], "service") == {
        "allowed": False, "legal_basis": "contract", "reasons": ["subject_restricted"]}
    assert (await decide(client, subject["id"], "analytics"))["reasons"] == ["subject_restricted"]
    assert (await decide(client, subject["id"], "billing"))["allowed"] is True


async def test_an_erased_subject_is_allowed_nothing(client, db):
    subject = await make_subject(client)
    await set_status(db, subject["id"], "erased")
    for purpose in ("billing", "service", "marketing"):
        decision = await decide(client, subject["id"], purpose)
        assert decision["allowed"] is False and "subject_erased" in decision["reasons"]


async def test_an_upheld_objection_stops_that_purpose_only(client, db):
    subject = await make_subject(client)
    async with db() as session:
        session.add(Objection(subject_id=uuid.UUID(subject["id"]), purpose="customer_support", upheld_at=utc_now(),
                              upheld_by="dpo"))
        await session.commit()
    assert await decide(client, subject["id"], "customer_support") == {
        "allowed": False, "legal_basis": "legitimate_interest", "reasons": ["objection_upheld"]}
    assert (await decide(client, subject["id"], "service"))["allowed"] is True


async def test_unknowns(client):
    response = await client.post("/v1/decisions", json={"subject_id": str(uuid.uuid4()), "purpose": "service"},
                                 headers=READER)
    assert_problem(response, 404)
    subject = await make_subject(client)
    assert await decide(client, subject["id"], "no_such_purpose") == {
        "allowed": False, "legal_basis": None, "reasons": ["unknown_purpose"]}


async def test_batch_answers_in_input_order(client):
    a, b = await make_subject(client), await make_subject(client)
    await consent(client, a["id"], "marketing", "granted")
    items = [{"subject_id": a["id"], "purpose": "marketing"}, {"subject_id": b["id"], "purpose": "marketing"},
             {"subject_id": str(uuid.uuid4()), "purpose": "service"}, {"subject_id": a["id"], "purpose": "nope"},
             {"subject_id": b["id"], "purpose": "service"}] * 200
    response = await client.post("/v1/decisions/batch", json={"items": items}, headers=READER)
    assert response.status_code == 200
    reasons = [r["reasons"][0] for r in response.json()["results"]]
    assert reasons == ["consent_granted", "no_consent", "unknown_subject", "unknown_purpose", "basis_contract"] * 200
    # Built from answers serialized once: still exactly the documented body, nothing missing, nothing more.
    assert response.headers["content-type"] == "application/json"
    assert DecisionBatchResult.model_validate_json(response.content).model_dump(mode="json") == response.json()
    assert response.json()["results"][:2] == [
        {"allowed": True, "legal_basis": "consent", "reasons": ["consent_granted"]},
        {"allowed": False, "legal_basis": "consent", "reasons": ["no_consent"]}]
    assert_problem(await client.post("/v1/decisions/batch", json={"items": items + items[:1]}, headers=READER), 422)
    assert_problem(await client.post("/v1/decisions/batch", json={"items": []}, headers=READER), 422)


async def test_decisions_need_consents_read(client):
    subject = await make_subject(client)
    body = {"subject_id": subject["id"], "purpose": "service"}
    assert_problem(await client.post("/v1/decisions", json=body, headers=staff("subjects:read")), 403)
    assert_problem(await client.post("/v1/decisions", json=body, headers=as_subject(subject["id"])), 403)
    assert_problem(await client.post("/v1/decisions", json=body), 401)


async def test_a_batch_is_one_query_on_current_state_never_history(app, client):
    subjects = [await make_subject(client) for _ in range(3)]
    for s in subjects:
        await consent(client, s["id"], "newsletter", "granted")
    statements: list[str] = []

    def capture(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with app.state.sessionmaker() as session:
            asked = [(uuid.UUID(s["id"]), p) for s in subjects for p in ("newsletter", "service", "billing")]
            decisions = await service.decide_many(session, asked)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [d.allowed for d in decisions] == [True] * 9
    queries = [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1"))]
    assert len(queries) == 1 and "consent_event" not in queries[0], queries
