"""Errors that carry their status, rendered as RFC 9457 problem details."""

from __future__ import annotations

import functools
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from app.core.context import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://wesafe.se/problems/"


class AppError(Exception):
    """Base of every error a service raises; the handler renders it as problem+json."""

    status: int = 500
    title: str = "Internal error"
    slug: str | None = None
    headers: dict[str, str] | None = None
    # An error whose writes must stand (a failed login attempt counts): the request's session commits them.
    keep_changes: bool = False

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class Unauthorized(AppError):
    status, title, slug = 401, "Authentication required", "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="wesafe-privacy"'}


class Forbidden(AppError):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(AppError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(AppError):
    status, title, slug = 409, "Conflict", "conflict"


class Unprocessable(AppError):
    status, title, slug = 422, "Invalid request", "invalid-request"

    def __init__(self, detail: str, *, loc: list[str | int] | None = None, **extensions: Any) -> None:
        if loc is not None:
            extensions.setdefault("errors", [{"loc": loc, "msg": detail}])
        super().__init__(detail, **extensions)


class TooManyRequests(AppError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


# --- rendering -------------------------------------------------------------------------------------------


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


def _type_uri(status: int, slug: str | None) -> str:
    return PROBLEM_BASE + slug if slug else "about:blank"


def problem_response(
    request: Request | None,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _type_uri(status, slug),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body["request_id"] = request_id_var.get()
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(request, exc.status, exc.detail, title=exc.title, slug=exc.slug,
                            headers=exc.headers, **exc.extensions)


_HTTP_SLUGS = {400: "malformed-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 413: "body-too-large"}
_HTTP_DETAILS = {404: "No such resource", 405: "This method is not allowed on this resource",
                 413: "The request body is larger than the limit"}


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))


def _allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the path answers to. Starlette's own Allow names only the one route that matched,
    while one path is often served by several routes (GET and POST on /v1/subjects)."""
    matching = [(template.count("{"), operations) for template, operations in app.openapi()["paths"].items()
                if _template_regex(template).fullmatch(path)]
    # The most literal template wins, as in OpenAPI: /consents/history before /consents/{purpose}.
    fewest = min((params for params, _ in matching), default=0)
    methods = {method.upper() for params, operations in matching if params == fewest for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != HTTPStatus(status).phrase else None
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request.app, request.url.path) or headers.get("Allow", "")
    return problem_response(request, status, detail or _HTTP_DETAILS.get(status, HTTPStatus(status).phrase),
                            slug=_HTTP_SLUGS.get(status), headers=headers)


def _loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(request, 400, "The request body is not valid JSON", slug="malformed-request")
    if any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors):
        # FastAPI only decodes JSON when the Content-Type says so.
        return problem_response(request, 400, "The request body must be JSON sent as application/json",
                                slug="malformed-request")
    # Never echo the input back: it may hold personal data (a card number, an e-mail address).
    items = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in errors]
    return problem_response(request, 422, "The request is well-formed but not valid", title="Invalid request",
                            slug="invalid-request", errors=items)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    retry = str(request.app.state.settings.database_retry_after_seconds)
    return problem_response(request, 503, "The database is unreachable; try again shortly",
                            title="Service unavailable", slug="unavailable", headers={"Retry-After": retry})


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # Services map the conflicts they expect; this is the net for concurrent writers racing them.
    log.info("integrity conflict: %s", type(getattr(exc, "orig", exc)).__name__)
    return problem_response(request, 409, "The change conflicts with the current state; retry the request",
                            title="Conflict", slug="conflict")


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("data error: %s", type(getattr(exc, "orig", exc)).__name__)
    return problem_response(request, 422, "A value is outside what the database can store",
                            title="Invalid request", slug="invalid-request")


# SQLite reports a missing database file or a held lock as OperationalError, as it does a bad statement:
# only these codes mean "unavailable, try again".
_SQLITE_UNAVAILABLE = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL",
                       "SQLITE_READONLY", "SQLITE_PROTOCOL"}


def _unavailable(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    code = getattr(exc.orig, "sqlite_errorname", None)
    if code is None:  # PostgreSQL: an OperationalError is about the connection or the server
        return True
    return any(code == c or code.startswith(c + "_") for c in _SQLITE_UNAVAILABLE)  # extended codes too


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, sa_exc.DBAPIError)
    if _unavailable(exc):
        return await _database_unavailable(request, exc)
    if isinstance(exc, sa_exc.IntegrityError):
        return await _integrity_error(request, exc)
    if isinstance(exc, sa_exc.DataError):
        return await _data_error(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.DBAPIError, _dbapi_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_unavailable)  # pool exhausted
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(TimeoutError, _database_unavailable)
    app.add_exception_handler(OSError, _database_unavailable)


# --- OpenAPI declarations ----------------------------------------------------------------------------------

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
        entry: dict[str, Any] = {"description": _DESCRIPTIONS[status],
                                 "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if status in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[status] = entry
    return responses


# Common sets: a protected route, and a route that takes a JSON body.
AUTH = (401, 403)
BODY = (400, 413, 422)
