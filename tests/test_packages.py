"""Access and portability packages: everything held, in JSON, CSV (zip) and bilingual HTML; audited downloads."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from tests.support import (
    REQUEST_MANAGER,
    add_item,
    as_subject,
    assert_problem,
    complete_request,
    make_processor,
    make_subject,
    report_disclosure,
    staff,
)

MANAGER = REQUEST_MANAGER


async def completed_request(client, subject_id: str, type_: str = "access") -> dict:
    return await complete_request(client, subject_id, type_)


async def customer(client) -> tuple[dict, dict]:
    subject = await make_subject(client, name="Nils Holm")
    sid = subject["id"]
    await add_item(client, sid, category="payment", value="5555 4444 3333 2222", purpose="billing")
    await add_item(client, sid, category="address", value="Kungsgatan 3", source="public_register", purpose="billing")
    await add_item(client, sid, category="phone", value="070-111 00 00", source="website", purpose="service")
    await client.post(f"/v1/subjects/{sid}/consents", headers=staff("consents:write"),
                      json={"purpose": "newsletter", "status": "granted", "channel": "web"})
    await client.delete(f"/v1/subjects/{sid}/consents/newsletter", headers=staff("consents:write"))
    await client.put(f"/v1/subjects/{sid}/marketing", json={"channels": {"sms": "opted_out"}},
                     headers=staff("consents:write"))
    processor = await make_processor(client, country="US")
    await report_disclosure(client, processor["id"], sid, ["email"], "newsletter")
    return subject, processor


async def test_the_package_holds_everything(client):
    subject, processor = await customer(client)
    request = await completed_request(client, subject["id"])
    response = await client.get(f"/v1/rights-requests/{request['id']}/package", headers=as_subject(subject["id"]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    package = response.json()
    assert package["subject"]["id"] == subject["id"] and package["subject"]["name"] == "Nils Holm"
    assert package["controller"]["supervisory_authority"]["former_name"] == "Datainspektionen"
    data = {i["category"]: i for i in package["personal_data"]}
    assert data["payment"]["value"] == "****2222" and data["address"]["value"] == "Kungsgatan 3"
    assert [c["status"] for c in package["consents"]["current"]] == ["withdrawn"]
    assert [e["status"] for e in package["consents"]["history"]] == ["withdrawn", "granted"]
    assert package["marketing"]["sms"] == "opted_out" and package["marketing"]["email"] == "allowed"
    [disclosure] = package["disclosures"]
    assert disclosure["recipient"] == {"id": processor["id"], "name": processor["name"], "country": "US",
                                       "third_country": True}
    assert [r["id"] for r in package["rights_requests"]] == [request["id"]]
    purposes = {p["code"]: p for p in package["purposes"]}
    assert purposes["billing"]["legal_basis"] == "legal_obligation"
    assert purposes["billing"]["retention"]["clock"] == "bookkeeping"
    assert purposes["billing"]["sources"] == ["direct", "public_register"]
    assert purposes["service"]["sources"] == ["website"] and purposes["marketing"]["sources"] == []
    assert {r["right"] for r in package["rights"]} >= {"access", "erasure", "portability", "objection", "complaint"}


async def test_staff_with_sensitive_read_see_the_full_value(client):
    subject, _ = await customer(client)
    request = await completed_request(client, subject["id"], "portability")
    package = (await client.get(f"/v1/rights-requests/{request['id']}/package",
                                headers=staff("requests:read", "sensitive:read"))).json()
    assert {i["category"]: i["value"] for i in package["personal_data"]}["payment"] == "5555 4444 3333 2222"


async def test_csv_is_a_zip_of_one_file_per_section(client):
    subject, _ = await customer(client)
    request = await completed_request(client, subject["id"], "portability")
    response = await client.get(f"/v1/rights-requests/{request['id']}/package.zip", headers=as_subject(subject["id"]))
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert set(archive.namelist()) == {f"{name}.csv" for name in (
        "controller", "subject", "personal_data", "consents", "consent_history", "marketing", "disclosures",
        "rights_requests", "purposes", "rights", "notices")}
    data = list(csv.DictReader(io.StringIO(archive.read("personal_data.csv").decode())))
    assert {row["category"]: row["value"] for row in data}["phone"] == "070-111 00 00"
    marketing = list(csv.DictReader(io.StringIO(archive.read("marketing.csv").decode())))
    assert {"channel": "sms", "state": "opted_out"} in marketing


async def test_html_is_readable_in_both_languages(client):
    subject, _ = await customer(client)
    request = await completed_request(client, subject["id"])
    response = await client.get(f"/v1/rights-requests/{request['id']}/package.html", headers=as_subject(subject["id"]))
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for heading in ("Dina rättigheter", "Your rights", "Mottagare av dina uppgifter", "Recipients of your data"):
        assert heading in page
    assert "Kungsgatan 3" in page and "****2222" in page and "5555 4444" not in page


async def test_format_still_works_as_before_each_format_had_its_own_operation(client):
    """`?format=csv|html` on the JSON operation gives what `.zip` and `.html` give (links made before them)."""
    subject, _ = await customer(client)
    request = await completed_request(client, subject["id"])
    url, headers = f"/v1/rights-requests/{request['id']}/package", as_subject(subject["id"])
    for fmt, suffix, media_type in (("csv", ".zip", "application/zip"), ("html", ".html", "text/html"),
                                    ("json", "", "application/json")):
        old = await client.get(url, params={"format": fmt}, headers=headers)
        new = await client.get(url + suffix, headers=headers)
        assert old.status_code == new.status_code == 200
        assert old.headers["content-type"] == new.headers["content-type"] and media_type in new.headers["content-type"]
        if fmt == "csv":
            old_files, new_files = (zipfile.ZipFile(io.BytesIO(r.content)) for r in (old, new))
            assert {n: old_files.read(n) for n in old_files.namelist()} == {
                n: new_files.read(n) for n in new_files.namelist()}
        elif fmt == "json":  # built at each download: the same but for the moment it was generated
            assert {**old.json(), "generated_at": None} == {**new.json(), "generated_at": None}
        else:
            generated = re.compile(r"Generated: [^<]*")
            assert generated.sub("", old.text) == generated.sub("", new.text)


async def test_every_format_is_refused_alike_before_completion(client):
    subject = await make_subject(client)
    filed = await client.post("/v1/rights-requests", json={"type": "access", "subject_id": subject["id"]},
                              headers=MANAGER)
    for suffix in ("", ".zip", ".html"):
        url = f"/v1/rights-requests/{filed.json()['id']}/package{suffix}"
        assert_problem(await client.get(url, headers=MANAGER), 409)
        assert_problem(await client.get(url, headers=staff("requests:manage")), 403)


async def test_no_package_before_completion_or_for_other_types(client):
    subject = await make_subject(client)
    pending = (await client.post("/v1/rights-requests", json={"type": "access", "subject_id": subject["id"]},
                                 headers=MANAGER)).json()
    assert_problem(await client.get(f"/v1/rights-requests/{pending['id']}/package", headers=MANAGER), 409)
    rectified = await completed_request(client, subject["id"], "rectification")
    assert_problem(await client.get(f"/v1/rights-requests/{rectified['id']}/package", headers=MANAGER), 409)
    other = await make_subject(client)
    assert_problem(await client.get(f"/v1/rights-requests/{pending['id']}/package", headers=as_subject(other["id"])),
                   404)
    assert_problem(await client.get(f"/v1/rights-requests/{pending['id']}/package", params={"format": "pdf"},
                                    headers=MANAGER), 422)


async def test_every_download_is_audited_and_built_fresh(client):
    subject, _ = await customer(client)
    request = await completed_request(client, subject["id"])
    url = f"/v1/rights-requests/{request['id']}/package"
    first = (await client.get(url, headers=as_subject(subject["id"]))).json()
    await add_item(client, subject["id"], category="title", value="Ingenjör", purpose="service")
    second = (await client.get(url, params={"format": "json"}, headers=as_subject(subject["id"]))).json()
    assert len(second["personal_data"]) == len(first["personal_data"]) + 1
    audit = (await client.get("/v1/audit-events", params={"subject_id": subject["id"],
                                                          "action": "rights_request.package_downloaded"},
                              headers=staff("audit:read"))).json()["items"]
    assert len(audit) == 2 and {e["role"] for e in audit} == {"subject"}
