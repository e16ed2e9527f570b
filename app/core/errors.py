"""Errors that carry their status, and the one handler rendering every error as RFC 9457 problem details."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.routing import Match

from app.core.context import request_id_var
from app.core.db import DatabaseUnavailable, problem_kind
from app.core.types import EMAIL_PATTERN, VISIBLE_TEXT

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://wesafe.se/problems/"


class AppError(Exception):
    """Base of every error a service raises; the handler renders it as problem+json."""

    status: int = 500
    title: str = "Internal error"
    slug: str | None = None
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class Unauthorized(AppError):
    status, title, slug = 401, "Authentication required", "unauthorized"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers = {"WWW-Authenticate": 'Bearer realm="wesafe-privacy"'}


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
        "type": PROBLEM_BASE + slug if slug else "about:blank",
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
    return problem_response(
        request, exc.status, exc.detail, title=exc.title, slug=exc.slug, headers=exc.headers, **exc.extensions
    )


_HTTP_SLUGS = {
    400: "malformed-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
}
_HTTP_DETAILS = {
    404: "No such resource",
    405: "This method is not allowed on this resource",
    413: "The request body is larger than the limit",
}


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the path answers to, asked of the app's own routes. Starlette's own Allow names only the
    one route that matched, while one path is often served by several (GET and POST on /v1/subjects)."""
    methods = {
        method
        for method in _METHODS
        if any(
            route.matches({"type": "http", "path": path, "root_path": "", "method": method, "headers": []})[0]
            == Match.FULL
            for route in app.router.routes
        )
    }
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
    return problem_response(
        request,
        status,
        detail or _HTTP_DETAILS.get(status, HTTPStatus(status).phrase),
        slug=_HTTP_SLUGS.get(status),
        headers=headers,
    )


def _loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


# What each pattern the API validates against expects, in words: a 422 says this rather than echoing the
# regular expression. tests/test_openapi.py checks that every pattern in the document is here.
PATTERN_WORDS = {
    EMAIL_PATTERN: "Must be an e-mail address, such as anna.svensson@example.se",
    VISIBLE_TEXT: "Must contain a visible character, and no NUL characters",
    r"^[a-z][a-z0-9_]{1,63}$": "Must be a code: a lower-case letter, then 1 to 63 lower-case letters, "
    "digits or underscores",
    r"^[a-z][a-z0-9_-]{0,63}$": "Must be an id: a lower-case letter, then up to 63 lower-case letters, "
    "digits, underscores or hyphens",
    r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$": "Must be a version: a letter or digit, then up to 31 letters, "
    "digits, dots, underscores or hyphens",
    r"^P(\d{1,3}Y(\d{1,4}M)?(\d{1,5}D)?|\d{1,4}M(\d{1,5}D)?|\d{1,5}D)$": "Must be an ISO 8601 period in "
    "years, months and days, such as P7Y, P6M or P30D",
    r"^[0-9]{6}$": "Must be the six digits from the e-mail",
    r"^[a-z_.]+$": "Must be an action name: lower-case letters, dots and underscores",
    r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$": "Must be a token from an unsubscribe link",
    r"^https?://[^\s]+$": "Must be an http or https URL, without spaces",
    r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$": "Must be an origin: http or https, a host and maybe a port",
    r"^[\x21-\x7e]+$": "Must be printable ASCII characters, without spaces",
    r"^[A-Za-z0-9_-]+$": "Must be a cursor from a page's next_cursor",
}


def _message(error: Any) -> str:
    """A validation failure in words, never echoing the input or a regular expression."""
    if error.get("type") == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern"))
        return PATTERN_WORDS.get(pattern, "Does not have the expected form (see the API documentation)")
    return str(error.get("msg", "invalid"))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(request, 400, "The request body is not valid JSON", slug="malformed-request")
    if any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors):
        # FastAPI only decodes JSON when the Content-Type says so.
        return problem_response(
            request, 400, "The request body must be JSON sent as application/json", slug="malformed-request"
        )
    # Never echo the input back: it may hold personal data (a card number, an e-mail address).
    items = [{"loc": _loc(e.get("loc", ())), "msg": _message(e)} for e in errors]
    return problem_response(
        request,
        422,
        "The request is well-formed but not valid",
        title="Invalid request",
        slug="invalid-request",
        errors=items,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    kind = problem_kind(exc)
    cause = type(getattr(exc, "orig", None) or exc.__cause__ or exc).__name__
    if kind == "unavailable":
        log.warning("database unavailable: %s", cause)
        retry = str(request.app.state.settings.database_retry_after_seconds)
        return problem_response(
            request,
            503,
            "The database is unreachable; try again shortly",
            title="Service unavailable",
            slug="unavailable",
            headers={"Retry-After": retry},
        )
    if kind == "conflict":
        # Services map the conflicts they expect; this is the net for concurrent writers racing them.
        log.info("integrity conflict: %s", cause)
        return problem_response(
            request,
            409,
            "The change conflicts with the current state; retry the request",
            title="Conflict",
            slug="conflict",
        )
    if kind == "invalid":
        log.info("data error: %s", cause)
        return problem_response(
            request,
            422,
            "A value is outside what the database can store",
            title="Invalid request",
            slug="invalid-request",
        )
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)  # the pool is exhausted
    app.add_exception_handler(DatabaseUnavailable, _database_error)
