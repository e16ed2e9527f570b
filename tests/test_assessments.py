"""Issue 16, part 5: per-purpose assessments. A `legitimate_interest` purpose is used in decisions only with
an approved legitimate-interest assessment; a high-risk purpose only with a DPIA reference. Admins set them
(audited), and the Art. 30 record shows them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from tests.support import ADMIN, as_subject, assert_problem, make_subject, staff

READER = staff("consents:read")


def purpose_body(code: str, basis: str = "legitimate_interest", **fields) -> dict:
    return {
        "code": code,
        "name": {"sv": "Prov", "en": "Trial"},
        "description": {"sv": "Ett ändamål för prov.", "en": "A purpose for trials."},
        "legal_basis": basis,
        "retention": {
            "clock": "after_collection",
            "period": "P12M",
            "action": "delete",
            "description": {"sv": "12 månader", "en": "12 months"},
        },
        "categories": ["name"],
        **fields,
    }


async def new_purpose(client, basis: str = "legitimate_interest", **fields) -> str:
    code = f"trial_{uuid.uuid4().hex[:8]}"
    response = await client.post("/v1/purposes", json=purpose_body(code, basis, **fields), headers=ADMIN)
    assert response.status_code == 201, response.text
    return code


async def decide(client, subject_id: str, purpose: str) -> dict:
    response = await client.post(
        "/v1/decisions", json={"subject_id": subject_id, "purpose": purpose}, headers=READER
    )
    assert response.status_code == 200, response.text
    return response.json()


async def patch(client, code: str, body: dict, headers: dict = ADMIN):
    return await client.patch(f"/v1/purposes/{code}", json=body, headers=headers)


async def test_the_default_legitimate_interest_purposes_keep_working(client):
    subject = await make_subject(client)
    purposes = {p["code"]: p for p in (await client.get("/v1/purposes")).json()["items"]}
    interests = [
        "customer_support",
        "office_visits",
        "security",
    ]  # the default ones (a database may hold more)
    assert all(purposes[code]["legal_basis"] == "legitimate_interest" for code in interests)
    for code in interests:
        assert purposes[code]["lia_reference"] and purposes[code]["lia_outcome"] == "approved"
        assert await decide(client, subject["id"], code) == {
            "allowed": True,
            "legal_basis": "legitimate_interest",
            "reasons": ["basis_legitimate_interest"],
        }
    assert purposes["security"]["high_risk"] is True and purposes["security"]["dpia_reference"]


async def test_a_legitimate_interest_without_an_approved_assessment_is_not_allowed(client):
    subject = await make_subject(client)
    code = await new_purpose(client)
    assert await decide(client, subject["id"], code) == {
        "allowed": False,
        "legal_basis": "legitimate_interest",
        "reasons": ["lia_missing"],
    }
    assert (
        await patch(client, code, {"lia_reference": "LIA-7", "lia_outcome": "rejected"})
    ).status_code == 200
    assert (await decide(client, subject["id"], code))["reasons"] == ["lia_rejected"]
    approved = await patch(client, code, {"lia_outcome": "approved"})
    assert approved.json()["lia_reference"] == "LIA-7" and approved.json()["lia_outcome"] == "approved"
    assert (await decide(client, subject["id"], code))["allowed"] is True
    # The batch answers by the same rule.
    other = await new_purpose(client)
    batch = await client.post(
        "/v1/decisions/batch",
        headers=READER,
        json={
            "items": [
                {"subject_id": subject["id"], "purpose": code},
                {"subject_id": subject["id"], "purpose": other},
            ]
        },
    )
    assert [r["reasons"] for r in batch.json()["results"]] == [["basis_legitimate_interest"], ["lia_missing"]]


@pytest.mark.parametrize("basis", ["contract", "legal_obligation", "consent"])
async def test_other_bases_need_no_legitimate_interest_assessment(client, basis):
    subject = await make_subject(client)
    code = await new_purpose(client, basis)
    assert "lia_missing" not in (await decide(client, subject["id"], code))["reasons"]


async def test_an_outcome_without_its_assessment_counts_for_nothing(client):
    """Any body the schema allows is accepted: an outcome set without a reference is kept, and decisions
    answer as if no assessment were recorded, until the reference is given."""
    subject = await make_subject(client)
    code = await new_purpose(client, lia_outcome="approved")
    assert (await decide(client, subject["id"], code))["reasons"] == ["lia_missing"]
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()
    assert next(a for a in record["activities"] if a["purpose"] == code)["assessments"]["usable"] is False
    await patch(client, code, {"lia_reference": "LIA-9"})
    assert (await decide(client, subject["id"], code))["allowed"] is True


async def test_a_high_risk_purpose_needs_a_dpia(client):
    subject = await make_subject(client)
    code = await new_purpose(client, "contract", high_risk=True)
    assert (await decide(client, subject["id"], code))["reasons"] == ["dpia_missing"]
    await patch(client, code, {"dpia_reference": "DPIA-3"})
    assert (await decide(client, subject["id"], code))["allowed"] is True
    both = await new_purpose(client, high_risk=True)
    assert (await decide(client, subject["id"], both))["reasons"] == ["lia_missing", "dpia_missing"]


@pytest.mark.parametrize(
    "body",
    [
        {"lia_outcome": "maybe"},
        {"lia_reference": ""},
        {"lia_reference": "x" * 201},
        {"high_risk": "yes"},
        {"lia_reference": None},
        {"dpia_reference": 7},
    ],
)
async def test_assessment_fields_are_validated(client, body):
    code = await new_purpose(client)
    assert_problem(await patch(client, code, body), 422)


async def test_only_admins_set_assessments_and_it_is_audited(client, db):
    code = await new_purpose(client)
    subject = await make_subject(client)
    for headers in (staff("consents:write"), as_subject(subject["id"])):
        assert_problem(await patch(client, code, {"lia_reference": "LIA-1"}, headers), 403)
    assert (
        await patch(client, code, {"lia_reference": "LIA-1", "lia_outcome": "approved"})
    ).status_code == 200
    async with db() as session:
        audited = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.target).where(
                    AuditEvent.action == "purpose.assessed", AuditEvent.target.like(f"{code}:%")
                )
            )
        ).all()
    assert audited == [("purpose.assessed", f"{code}:lia_outcome,lia_reference")]


async def test_the_record_of_processing_shows_the_assessments(client):
    code = await new_purpose(client, high_risk=True)
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()
    activities = {a["purpose"]: a for a in record["activities"]}
    assert activities[code]["assessments"] == {
        "lia_reference": None,
        "lia_outcome": None,
        "lia_required": True,
        "high_risk": True,
        "dpia_reference": None,
        "usable": False,
    }
    support = activities["customer_support"]["assessments"]
    assert support["lia_outcome"] == "approved" and support["usable"] is True
    assert activities["service"]["assessments"]["lia_required"] is False
    csv = (await client.get("/v1/records-of-processing.csv", headers=ADMIN)).text
    header, *rows = csv.splitlines()
    assert "lia" in header.split(",") and "dpia" in header.split(",")
    assert any(row.startswith("WeSafe IT") and f",{code}," in row and "MISSING" in row for row in rows)
