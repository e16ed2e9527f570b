"""The OpenAPI document is part of the product: generated from the app, committed, and complete."""

from __future__ import annotations

import json
from pathlib import Path

from app.main import create_app
from tests.support import app_settings

COMMITTED = Path(__file__).parent.parent / "openapi" / "openapi.json"
PUBLIC = {("get", p) for p in ("/healthz", "/readyz", "/metrics", "/v1/controller", "/v1/purposes",
                                "/v1/purposes/{code}", "/v1/policies", "/v1/policies/current",
                                "/v1/policies/{version}", "/v1/consent-receipts/jwks.json",
                                "/v1/marketing/unsubscribe", "/v1/cookies",
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
