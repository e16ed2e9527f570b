"""The OpenAPI document is part of the product: generated from the app, committed, and complete."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from app.auth.principals import Scope
from app.core.errors import PATTERN_WORDS
from app.core.openapi import scope_table
from app.main import create_app
from tests.support import ALL_SCOPES, app_settings, staff

COMMITTED = Path(__file__).parent.parent / "openapi" / "openapi.json"
PUBLIC = {("get", p) for p in ("/healthz", "/readyz", "/v1/controller", "/v1/purposes",
                                "/v1/purposes/{code}", "/v1/policies", "/v1/policies/current",
                                "/v1/policies/{version}", "/v1/consent-receipts/jwks.json",
                                "/v1/marketing/unsubscribe", "/v1/cookies", "/v1/cookies/{cookie_id}",
                                "/v1/visitor-consents/{visitor_id}")} | {("post", p) for p in (
    "/v1/auth/token", "/v1/marketing/unsubscribe", "/v1/auth/subject-login", "/v1/auth/subject-login/verify",
    "/v1/visitor-consents")}


def document() -> dict:
    return create_app(app_settings()).openapi()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_committed_document_matches_the_app():
    assert json.loads(COMMITTED.read_text()) == document(), (
        "openapi/openapi.json is stale: regenerate it with `privacy openapi -o openapi/openapi.json`")


def test_every_operation_has_a_summary_a_stable_id_and_declared_errors():
    doc = document()
    ids = []
    for path, method, operation in operations(doc):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert operation["operationId"].startswith(operation["tags"][0] + "-"), where
        ids.append(operation["operationId"])
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith(("4", "5")) and path.startswith("/v1"):
                assert "application/problem+json" in response["content"], (where, status)
        secured = bool(operation.get("security"))
        if (method, path) in PUBLIC:
            assert not secured, where
            continue
        assert secured, f"{where} declares no security"
        assert {"401", "403"} <= set(responses), where
    assert len(ids) == len(set(ids))


def test_write_operations_are_secured():
    for path, method, operation in operations(document()):
        if method in ("post", "put", "patch", "delete") and (method, path) not in PUBLIC:
            assert operation.get("security"), f"{method.upper()} {path}"


def test_creating_posts_document_idempotency_keys():
    doc = document()
    keyed = {(path, method) for path, method, op in operations(doc)
             if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))}
    assert ("/v1/subjects", "post") in keyed and ("/v1/subjects/{subject_id}/data", "post") in keyed


def test_bodies_carry_examples():
    schemas = document()["components"]["schemas"]
    for name in ("SubjectCreate", "DataItemCreate", "PurposeCreate", "PolicyPublish", "StaffClientCreate", "Problem"):
        assert schemas[name].get("examples"), name


def _refs(node) -> set[str]:
    """The component schemas a part of the document names, directly."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _reachable(doc: dict, roots: set[str]) -> set[str]:
    schemas, seen, todo = doc["components"]["schemas"], set(), set(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= _refs(schemas[name])
    return seen


def test_component_schemas_have_one_name_and_title_each():
    """A generator names a model by its title: two components with one title collide (openapi-python-client
    then drops one and every response that names it), and FastAPI's -Input/-Output split gives one model two
    names."""
    schemas = document()["components"]["schemas"]
    assert [name for name in schemas if name.endswith(("-Input", "-Output"))] == []
    titles = Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [title for title, count in titles.items() if count > 1] == []


TIMESTAMP = re.compile(r"^(at|.+_at|.+_until|effective_from)$")


def test_response_timestamps_are_date_times():
    """Every timestamp a response carries is documented as an RFC 3339 date-time (the wire form is checked by the
    domain tests: `2026-11-25T10:00:00Z`)."""
    doc = document()
    roots = set().union(*(_refs(op["responses"]) for _, _, op in operations(doc)))
    checked, missing = 0, []
    for name in _reachable(doc, roots):
        for prop, schema in doc["components"]["schemas"][name].get("properties", {}).items():
            if TIMESTAMP.match(prop):
                checked += 1
                if not any(alt.get("format") == "date-time" for alt in schema.get("anyOf", [schema])):
                    missing.append(f"{name}.{prop}")
    assert checked > 40 and missing == []


def test_a_duplicate_subject_conflict_has_a_typed_existing_id():
    doc = document()
    conflict = doc["paths"]["/v1/subjects"]["post"]["responses"]["409"]["content"]["application/problem+json"]
    assert conflict["schema"] == {"$ref": "#/components/schemas/DuplicateSubjectProblem"}
    problem = doc["components"]["schemas"]["DuplicateSubjectProblem"]
    assert problem["properties"]["existing_id"] == {
        "type": "string", "format": "uuid", "title": "Existing Id", "description": "The subject that has the address."}
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


# Creations with no one resource to point at: several opt-outs (one per channel) and a batch.
NO_LOCATION = {("post", "/v1/marketing/opt-outs"), ("post", "/v1/disclosures/batch")}


def test_created_responses_declare_their_location():
    declared = set()
    for path, method, operation in operations(document()):
        created = operation["responses"].get("201")
        if created and (method, path) not in NO_LOCATION:
            assert "Location" in created.get("headers", {}), f"{method.upper()} {path}"
            declared.add(path)
    assert {"/v1/subjects", "/v1/subjects/{subject_id}/data", "/v1/subjects/{subject_id}/consents",
            "/v1/rights-requests", "/v1/processors", "/v1/disclosures", "/v1/clients", "/v1/webhook-endpoints",
            "/v1/cookies", "/v1/subjects/{subject_id}/legal-holds", "/v1/visitor-consents", "/v1/purposes",
            "/v1/policies"} <= declared
    # A sweep started (202) names the run to follow.
    run = document()["paths"]["/v1/retention/runs"]["post"]["responses"]["202"]
    assert "Location" in run["headers"]


def test_each_package_format_is_its_own_operation_with_its_media_type():
    paths = document()["paths"]
    media = {suffix: paths[f"/v1/rights-requests/{{request_id}}/package{suffix}"]["get"]["responses"]["200"]["content"]
             for suffix in ("", ".zip", ".html")}
    assert media[""] == {"application/json": {"schema": {"$ref": "#/components/schemas/Package"}}}
    assert media[".zip"] == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
    assert media[".html"] == {"text/html": {"schema": {"type": "string"}}}
    # ?format= still works (tests/test_packages.py) but is not offered: a client would parse its answer as JSON.
    assert [p["name"] for p in paths["/v1/rights-requests/{request_id}/package"]["get"]["parameters"]] == [
        "request_id"]


def test_staff_scopes_are_an_oauth2_client_credentials_scheme():
    schemes = document()["components"]["securitySchemes"]
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/auth/token" and set(flow["scopes"]) == set(ALL_SCOPES)
    assert schemes["bearerAuth"]["scheme"] == "bearer"


def test_each_operation_names_the_scopes_its_route_requires():
    """Derived from the routes' own requirements; spot-checked here, and every one checked over HTTP below."""
    paths = document()["paths"]
    assert paths["/v1/decisions"]["post"]["security"] == [{"oauth2": ["consents:read"]}]
    assert paths["/v1/rights-requests/{request_id}/package"]["get"]["security"] == [
        {"oauth2": ["requests:read"]}, {"bearerAuth": []}]
    assert paths["/v1/disclosures"]["post"]["x-roles"] == ["staff", "processor"]
    assert paths["/v1/processors"]["post"]["security"] == [{"oauth2": ["admin"]}]
    assert paths["/v1/processors"]["get"]["security"] == [{"oauth2": []}]  # any staff token
    assert paths["/v1/me"]["get"]["security"] == [{"bearerAuth": []}]


def _staff_operations():
    for path, method, operation in operations(document()):
        for requirement in operation.get("security", []):
            if "oauth2" in requirement:
                yield pytest.param(method, path, requirement["oauth2"], id=f"{method.upper()} {path}")


@pytest.mark.parametrize(("method", "path", "scopes"), list(_staff_operations()))
async def test_the_declared_scopes_are_what_the_operation_needs(client, method, path, scopes):
    """Exactly the declared scopes get past the check (whatever the answer is then: no id here exists); any one
    of them missing is a 403 naming it."""
    url = re.sub(r"\{([^}]+)\}", lambda m: str(uuid.uuid4()) if m[1].endswith("id") else "no_such_code", path)
    response = await client.request(method, url, headers=staff(*scopes))
    assert response.status_code != 403, response.text
    for scope in scopes:
        fewer = [s for s in ALL_SCOPES if s != scope]
        refused = await client.request(method, url, headers=staff(*fewer))
        assert refused.status_code == 403 and scope in refused.json()["detail"], refused.text


SCOPES_DOC = Path(__file__).parent.parent / "docs" / "scopes.md"
TABLE = re.compile(r"<!-- scope table -->\n(.*?)<!-- end of scope table -->", re.S)


def test_the_scope_table_in_the_docs_is_the_documents():
    """docs/scopes.md's table is generated from openapi/openapi.json (itself checked against the app above).
    `UPDATE_DOCS=1 pytest tests/test_openapi.py` rewrites it."""
    expected = scope_table(json.loads(COMMITTED.read_text()))
    text = SCOPES_DOC.read_text()
    if os.environ.get("UPDATE_DOCS") and TABLE.search(text):
        text = TABLE.sub(lambda _: f"<!-- scope table -->\n{expected}<!-- end of scope table -->", text)
        SCOPES_DOC.write_text(text)
    found = TABLE.search(text)
    assert found and found.group(1) == expected, "docs/scopes.md is stale: UPDATE_DOCS=1 pytest tests/test_openapi.py"
    assert all(f"`{scope}`" in text for scope in Scope)


def test_every_pattern_in_the_document_is_explained_in_words():
    """A 422 for a pattern says what is expected (app/core/errors.py PATTERN_WORDS), not the regular expression."""
    def patterns(node):
        if isinstance(node, dict):
            yield from ([node["pattern"]] if isinstance(node.get("pattern"), str) else [])
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = set(patterns(document()))
    assert len(found) > 5 and found - set(PATTERN_WORDS) == set()
