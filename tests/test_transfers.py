"""Transfers and processors (GDPR Art. 28, 44-49): each processor's transfer mechanism, impact assessment,
sub-processors and agreement; editing and ending a processor; the transfers in the record of processing and in
the privacy notice."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from tests.support import (
    ADMIN,
    STAFF_ALL,
    as_processor,
    assert_problem,
    complete_request,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

SCC = {"mechanism": "scc", "scc_module": 2, "scc_signed_on": "2026-03-01"}


def _body(**fields) -> dict:
    return {
        "name": f"Processor {uuid.uuid4().hex[:6]}",
        "dpa_reference": "DPA-7",
        "country": "US",
        "contact_email": "privacy@processor.example",
        **fields,
    }


GOOD_TRANSFERS = [
    SCC,
    {**SCC, "scc_module": 1, "reference": "SCC-2026-7"},
    {**SCC, "scc_module": 4},
    {"mechanism": "adequacy_decision", "reference": "EU-US Data Privacy Framework, C(2023) 4745"},
    {"mechanism": "bcr", "reference": "BCR approved by CNIL, 2024"},
    {"mechanism": "derogation", "derogation": "explicit_consent"},
    {"mechanism": "derogation", "derogation": "compelling_legitimate_interests", "reference": "Memo 12"},
]

BAD_TRANSFERS = [
    {"mechanism": "scc"},  # neither module nor date
    {"mechanism": "scc", "scc_module": 2},  # no date
    {"mechanism": "scc", "scc_signed_on": "2026-03-01"},  # no module
    {**SCC, "scc_module": 0},
    {**SCC, "scc_module": 5},
    {**SCC, "scc_module": "two"},
    {**SCC, "scc_signed_on": "yesterday"},
    {**SCC, "derogation": "explicit_consent"},  # a derogation's field on SCCs
    {"mechanism": "adequacy_decision"},  # which decision?
    {"mechanism": "adequacy_decision", "reference": "Japan", "scc_module": 2},
    {"mechanism": "bcr"},
    {"mechanism": "bcr", "reference": " "},
    {"mechanism": "derogation"},  # which one?
    {"mechanism": "derogation", "derogation": "because"},
    {"mechanism": "derogation", "derogation": "explicit_consent", "scc_signed_on": "2026-03-01"},
    {"mechanism": "treaty", "reference": "x"},
    {"reference": "x"},
    {**SCC, "extra": 1},
    "scc",
    [SCC],
]


@pytest.mark.parametrize("transfer", GOOD_TRANSFERS)
async def test_each_transfer_mechanism_is_recorded_with_what_it_needs(client, transfer):
    created = await make_processor(client, **_body(transfer=transfer, tia_reference="TIA-2026-03"))
    assert created["transfer"] == {
        "scc_module": None,
        "scc_signed_on": None,
        "derogation": None,
        "reference": None,
        **transfer,
    }
    assert created["transfer_safeguarded"] is True and created["tia_reference"] == "TIA-2026-03"
    again = (await client.get(f"/v1/processors/{created['id']}", headers=staff())).json()
    assert again["transfer"] == created["transfer"]


@pytest.mark.parametrize("transfer", BAD_TRANSFERS)
async def test_an_incomplete_or_mixed_transfer_mechanism_is_a_clear_422(client, transfer):
    problem = assert_problem(
        await client.post("/v1/processors", json=_body(transfer=transfer), headers=ADMIN), 422
    )
    assert problem["errors"][0]["loc"][:2] == ["body", "transfer"], problem


async def test_the_registry_rules_across_fields(client):
    # No transfer mechanism for a processor in the EU/EEA: there is no transfer.
    for country in ("SE", "NO", "DE"):
        problem = assert_problem(
            await client.post("/v1/processors", json=_body(country=country, transfer=SCC), headers=ADMIN), 422
        )
        assert problem["errors"][0]["loc"] == ["body", "transfer"]
    # The agreement expires after it was signed.
    for signed, expires in (("2026-01-15", "2026-01-15"), ("2026-01-15", "2025-12-31")):
        problem = assert_problem(
            await client.post(
                "/v1/processors", json=_body(dpa_signed_on=signed, dpa_expires_on=expires), headers=ADMIN
            ),
            422,
        )
        assert problem["errors"][0]["loc"] == ["body", "dpa_expires_on"]
    for bad in (
        {"name": "Cloud", "country": "XX", "purpose": "Hosting"},
        {"name": "Cloud", "country": "SE"},
        {"name": "", "country": "SE", "purpose": "Hosting"},
        "Cloud AB",
    ):
        assert_problem(
            await client.post("/v1/processors", json=_body(sub_processors=[bad]), headers=ADMIN), 422
        )
    # Without a mechanism a third-country processor is registered, but not safeguarded.
    bare = await make_processor(client, **_body())
    assert (
        bare["third_country"] is True and bare["transfer"] is None and bare["transfer_safeguarded"] is False
    )
    assert bare["sub_processors"] == [] and bare["ended_at"] is None
    swedish = await make_processor(
        client,
        **_body(
            country="SE",
            dpa_signed_on="2026-01-15",
            dpa_expires_on="2028-01-14",
            sub_processors=[{"name": "Cloud Inc.", "country": "US", "purpose": "Hosting"}],
        ),
    )
    assert swedish["transfer_safeguarded"] is True and swedish["dpa_expires_on"] == "2028-01-14"
    assert swedish["sub_processors"] == [{"name": "Cloud Inc.", "country": "US", "purpose": "Hosting"}]


async def test_a_processor_is_edited_by_an_admin_only_and_audited(client, db):
    processor = await make_processor(client, **_body())
    url = f"/v1/processors/{processor['id']}"
    edited = await client.patch(url, json={"transfer": SCC, "tia_reference": "TIA-9"}, headers=ADMIN)
    assert edited.status_code == 200, edited.text
    assert edited.json()["transfer_safeguarded"] is True and edited.json()["updated_at"] is not None
    assert edited.json()["name"] == processor["name"]  # what was not sent stays
    cleared = (await client.patch(url, json={"transfer": None}, headers=ADMIN)).json()
    assert cleared["transfer"] is None and cleared["transfer_safeguarded"] is False
    assert cleared["tia_reference"] == "TIA-9"
    # Moving it to Sweden with a mechanism is a contradiction; moving it without one is fine.
    await client.patch(url, json={"transfer": SCC}, headers=ADMIN)
    assert_problem(await client.patch(url, json={"country": "SE"}, headers=ADMIN), 422)
    moved = (await client.patch(url, json={"country": "SE", "transfer": None}, headers=ADMIN)).json()
    assert moved["third_country"] is False and moved["transfer_safeguarded"] is True
    for bad in (
        {},
        {"name": None},
        {"country": None},
        {"dpa_reference": None},
        {"contact_email": None},
        {"webhook_url": "https://x.example"},
        {"country": "XX"},
        {"dpa_signed_on": "2026-02-01", "dpa_expires_on": "2026-01-01"},
    ):
        assert_problem(await client.patch(url, json=bad, headers=ADMIN), 422)
    assert_problem(await client.patch(url, json={"name": "x"}, headers=staff("disclosures:write")), 403)
    assert_problem(await client.patch(url, json={"name": "x"}, headers=as_processor(processor["id"])), 403)
    assert_problem(
        await client.patch(f"/v1/processors/{uuid.uuid4()}", json={"name": "x"}, headers=ADMIN), 404
    )
    async with db() as session:
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action).where(AuditEvent.target.like(f"{processor['id']}%"))
                )
            )
            .scalars()
            .all()
        )
    assert actions.count("processor.updated") == 4 and "processor.created" in actions


async def _client_of(client, processor_id: str) -> tuple[dict, dict]:
    registered = (
        await client.post(
            "/v1/clients",
            json={"name": "p", "role": "processor", "processor_id": processor_id},
            headers=ADMIN,
        )
    ).json()
    form = {
        "grant_type": "client_credentials",
        "client_id": registered["client_id"],
        "client_secret": registered["client_secret"],
    }
    issued = await client.post("/v1/auth/token", data=form)
    assert issued.status_code == 200, issued.text
    return form, {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def test_an_ended_processor_gets_no_tokens_and_its_open_tasks_stay_visible(client, db):
    processor = await make_processor(client, **_body(country="SE"))
    form, bearer = await _client_of(client, processor["id"])
    subject = await make_subject(client)
    await report_disclosure(client, processor["id"], subject["id"], ["email"], "service")
    await complete_request(client, subject["id"], "erasure")
    tasks = (await client.get("/v1/processor-tasks", headers=bearer)).json()["items"]
    assert [t["type"] for t in tasks] == ["erasure"]

    ended = await client.post(
        f"/v1/processors/{processor['id']}/end", json={"reason": "Contract ended."}, headers=ADMIN
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended_at"] is not None and ended.json()["end_reason"] == "Contract ended."
    # Its client gets no new token, and the token it holds is refused at once.
    refused = await client.post("/v1/auth/token", data=form)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert_problem(await client.get("/v1/processor-tasks", headers=bearer), 401)
    # Staff still see its open task.
    seen = (
        await client.get(
            "/v1/processor-tasks",
            params={"processor_id": processor["id"], "status": "open"},
            headers=STAFF_ALL,
        )
    ).json()["items"]
    assert [t["id"] for t in seen] == [tasks[0]["id"]]
    # Its record is kept as it ended; it gets no new clients; it ends once.
    assert_problem(await client.post(f"/v1/processors/{processor['id']}/end", headers=ADMIN), 409)
    assert_problem(
        await client.patch(f"/v1/processors/{processor['id']}", json={"name": "x"}, headers=ADMIN), 409
    )
    again = await client.post(
        "/v1/clients",
        json={"name": "p2", "role": "processor", "processor_id": processor["id"]},
        headers=ADMIN,
    )
    assert assert_problem(again, 422)["errors"][0]["loc"] == ["body", "processor_id"]
    listed = (await client.get(f"/v1/processors/{processor['id']}", headers=staff())).json()
    assert listed["ended_at"] == ended.json()["ended_at"]
    async with db() as session:
        assert (
            await session.execute(
                select(AuditEvent.id).where(
                    AuditEvent.action == "processor.ended", AuditEvent.target == processor["id"]
                )
            )
        ).first() is not None


async def test_ending_a_processor_is_checked(client):
    processor = await make_processor(client, **_body(country="SE"))
    url = f"/v1/processors/{processor['id']}/end"
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    for bad in ({"ended_at": future}, {"ended_at": "soon"}, {"ended_at": 5}, {"reason": ""}, {"x": 1}, []):
        assert_problem(await client.post(url, json=bad, headers=ADMIN), 422)
    assert_problem(await client.post(url, headers=staff("disclosures:write")), 403)
    assert_problem(await client.post(f"/v1/processors/{uuid.uuid4()}/end", headers=ADMIN), 404)
    assert (await client.post(url, headers=ADMIN)).status_code == 200  # no body: now


async def test_the_record_of_processing_lists_transfers_and_their_safeguards(client):
    american = await make_processor(
        client,
        **_body(
            transfer=SCC,
            tia_reference="TIA-2026-03",
            sub_processors=[
                {"name": f"Onward {uuid.uuid4().hex[:6]}", "country": "IN", "purpose": "Support desk"},
                {"name": "Hosting AB", "country": "SE", "purpose": "Hosting"},
            ],
        ),
    )
    unsafe = await make_processor(client, **_body())
    subject = await make_subject(client)
    await report_disclosure(client, american["id"], subject["id"], ["email"], "customer_support")
    await report_disclosure(client, unsafe["id"], subject["id"], ["email"], "customer_support")
    record = (await client.get("/v1/records-of-processing", headers=ADMIN)).json()
    support = next(a for a in record["activities"] if a["purpose"] == "customer_support")
    transfers = support["third_country_transfers"]
    assert any(
        t.startswith(f"{american['name']} (US): ") and "module 2" in t and "2026-03-01" in t
        for t in transfers
    ), transfers
    assert any(t.startswith(f"{unsafe['name']} (US): No safeguard recorded") for t in transfers), transfers
    registry = {p["id"]: p for p in record["processors"]}
    assert registry[american["id"]]["transfer"]["scc_module"] == 2
    assert registry[american["id"]]["tia_reference"] == "TIA-2026-03"
    listed = [t for t in record["transfers"] if t["processor_id"] == american["id"]]
    assert {(t["recipient"], t["country"], t["via"]) for t in listed} == {
        (american["name"], "US", None),
        (american["sub_processors"][0]["name"], "IN", american["name"]),
    }
    assert all(t["mechanism"] == "scc" and t["tia_reference"] == "TIA-2026-03" for t in listed)
    csv = (await client.get("/v1/records-of-processing.csv", headers=ADMIN)).text
    assert "module 2" in csv and american["name"] in csv
    # The CSV's transfers column lists every transfer, the onward one to a sub-processor too.
    onward = american["sub_processors"][0]["name"]
    assert f"{onward} (IN, via {american['name']}): Onward transfer" in csv, csv


async def test_the_notice_in_force_lists_the_transfers(client):
    american = await make_processor(client, **_body(transfer={"mechanism": "bcr", "reference": "BCR-42"}))
    gone = await make_processor(client, **_body(transfer=SCC))
    await client.post(f"/v1/processors/{gone['id']}/end", headers=ADMIN)
    for lang, words in (("en", "Binding corporate rules"), ("sv", "Bindande företagsbestämmelser")):
        notice = (await client.get("/v1/policies/current", params={"lang": lang})).json()
        section = notice["sections"][-1]
        assert section["id"] == "third-country-transfers", notice["sections"]
        assert f"{american['name']} (US): {words} (Art. 47): BCR-42." in section["body"]
        assert gone["name"] not in section["body"]


async def test_the_notice_page_the_mails_link_to_lists_the_transfers_of_the_notice_in_force(client):
    """A notice mail (Art. 13, 14) links to /privacy-center/notice/{version}: for the version in force that
    page is the notice in force, transfers included (Art. 13(1)(f), 14(1)(f)); the API's
    /v1/policies/{version} stays the version as published."""
    american = await make_processor(client, **_body(transfer={"mechanism": "bcr", "reference": "BCR-77"}))
    current = (await client.get("/v1/policies/current", params={"lang": "en"})).json()["version"]
    page = await client.get(f"/privacy-center/notice/{current}", params={"lang": "en"})
    assert page.status_code == 200, page.text
    assert f"{american['name']} (US): Binding corporate rules (Art. 47): BCR-77." in html.unescape(page.text)
    published = (await client.get(f"/v1/policies/{current}", params={"lang": "en"})).json()
    assert "third-country-transfers" not in [s["id"] for s in published["sections"]]
