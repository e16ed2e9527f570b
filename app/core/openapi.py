"""The OpenAPI document: the problem+json model and the error responses routes declare, operation ids, and
the document built once from the app's routes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import PROBLEM_JSON
from app.core.responses import CREATED_LOCATION

# The security scheme of staff tokens (OAuth 2.0 client credentials, with scopes); subjects' and processors'
# tokens are plain bearer tokens (`bearerAuth`).
OAUTH2 = "oauth2"
BEARER = "bearerAuth"


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
    415: "The body is not of the media type this operation takes",
    422: "Well-formed but invalid",
    429: "Rate limited; see Retry-After",
    503: "Database unreachable; see Retry-After",
}


# The problem models that responses name besides Problem itself (by schema name), emitted by build().
_MODELS: dict[str, type[Problem]] = {}


def problems(
    *statuses: int, models: Mapping[int, type[Problem]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses, all problem+json: the `Problem` schema, or for a
    status in `models` a subclass naming the extension members that problem carries (`existing_id`)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses) | set(models or {}) | {503}):
        model = (models or {}).get(status, Problem)
        _MODELS[model.__name__] = model
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
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


# What the app says about each route's access, as operation fields: `security` (and `x-roles`).
Access = Callable[[APIRoute], dict[str, Any]]


def build(
    app: FastAPI,
    routes: Iterable[APIRoute] = (),
    *,
    access: Access | None = None,
    security_schemes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The document, built once. `routes` are the app's API routes: each operation is found by its id, and
    gets its `Location` header (a route marked by `core.responses.created`) and, through `access`, the
    security it needs, derived from the route's own dependencies, so that the two cannot disagree."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            contact=app.contact,
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        models: dict[str, type[Problem]] = {"Problem": Problem, **_MODELS}
        for name, model in sorted(models.items()):
            schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schemas[name].pop("$defs", {}))
        # FastAPI's own 422 entries describe its default body, which this service never sends.
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        if security_schemes:
            components["securitySchemes"] = dict(security_schemes)
        by_id = {operation_id(route): route for route in routes if route.include_in_schema}
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
                route = by_id.get(operation["operationId"])
                if route is None:
                    continue
                if access is not None:
                    operation.pop("security", None)
                    operation.update(access(route))
                location = getattr(route.endpoint, CREATED_LOCATION, None)
                if location is not None:
                    created = operation["responses"][str(route.status_code)]
                    created["headers"] = {
                        "Location": {
                            "description": f"Where the created resource is: `{location}`.",
                            "schema": {"type": "string", "format": "uri-reference"},
                        }
                    }
        app.openapi_schema = schema
    return app.openapi_schema


def scope_table(document: Mapping[str, Any]) -> str:
    """docs/scopes.md's table, from the document: each operation, who may call it, and the staff scopes it
    needs (tests/test_openapi.py checks the file against it)."""
    lines = ["| operation | method and path | roles | staff scopes |", "|---|---|---|---|"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/v1"):
                continue
            roles = operation.get("x-roles", [])
            scopes = next((r[OAUTH2] for r in operation.get("security", []) if OAUTH2 in r), None)
            if scopes is None:
                needs = "not for staff" if roles else "none"
            else:
                needs = ", ".join(f"`{s}`" for s in scopes) or "any staff token"
            lines.append(
                f"| `{operation['operationId']}` | `{method.upper()} {path}` | "
                f"{', '.join(roles) or 'anyone (public)'} | {needs} |"
            )
    return "\n".join(lines) + "\n"
