"""The OpenAPI document: the problem+json model and the error responses routes declare, operation ids, and
the document built once from the app's routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import PROBLEM_JSON


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://wesafe.se/problems/not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "Subject not found",
                    "instance": "/v1/subjects/7d4c8f0e-2f5a-4b7e-9c1d-3a6b5e4f2d10",
                    "request_id": "5f0c2d8a9b3e4f61a7c8d9e0f1a2b3c4",
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ValidationItem] | None = Field(default=None, description="Validation failures (422).")


_DESCRIPTIONS = {
    400: "Malformed request (the body is not JSON)",
    401: "Missing or invalid bearer token",
    403: "The token lacks the role or scope this operation needs",
    404: "No such resource, or not within the caller's reach",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Request body over the size limit",
    422: "Well-formed but invalid",
    429: "Rate limited; see Retry-After",
    503: "Database unreachable; see Retry-After",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses, all problem+json."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses) | {503}):
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}
            }
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[status] = entry
    return responses


# Common sets: a protected route, and a route that takes a JSON body.
AUTH = (401, 403)
BODY = (400, 413, 422)


def operation_id(route: APIRoute) -> str:
    """Stable operation ids: `{tag}-{function}`."""
    return f"{route.tags[0]}-{route.name}"


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            contact=app.contact,
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas["Problem"].pop("$defs", {}))
        # FastAPI's own 422 entries describe its default body, which this service never sends.
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path in schema["paths"].values():
            for operation in path.values():
                error = operation.get("responses", {}).get("422")
                if error and "application/json" in error.get("content", {}):
                    operation["responses"]["422"] = {
                        "description": "Well-formed but invalid",
                        "content": {
                            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                        },
                    }
        app.openapi_schema = schema
    return app.openapi_schema
