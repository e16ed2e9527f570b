"""The one ASGI middleware: request id, access log, metrics, cache policy, security headers, and the
last-resort 500."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import request_id_var
from app.core.errors import PROBLEM_BASE, PROBLEM_JSON
from app.core.headers import FRAME_OPTIONS, NOSNIFF, PAGE_POLICY, REFERRER_POLICY

log = logging.getLogger("app.access")

REQUESTS = Counter("privacy_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "privacy_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_NO_STORE = (b"cache-control", b"no-store")
_VARY_ORIGIN = (b"vary", b"Origin")
# core.headers: on every response; on HTML, a policy (unless the page brought its own) and no framing.
_EVERY_RESPONSE = (
    (b"x-content-type-options", NOSNIFF.encode()),
    (b"referrer-policy", REFERRER_POLICY.encode()),
)
_PAGE_POLICY = (b"content-security-policy", PAGE_POLICY.encode())
_FRAME_OPTIONS = (b"x-frame-options", FRAME_OPTIONS.encode())


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it sits on every request, including the hot paths."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # RFC 9110 §9.3.2: HEAD is GET without the content, so every GET route answers it (and Allow, which
        # names HEAD wherever GET is, stays true).
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        request_id, from_browser = None, False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _VALID_REQUEST_ID.match(candidate) else None
            elif name == b"origin":
                from_browser = True
        request_id = request_id or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                present, html, shared, by_origin = set(), False, False, False
                for name, value in headers:
                    name = name.lower()
                    present.add(name)
                    if name == b"content-type":
                        html = value[:9].lower() == b"text/html"
                    elif name == b"cache-control":
                        shared = value[:6].lower() == b"public"
                    elif name == b"vary":
                        by_origin = by_origin or b"origin" in value.lower()
                headers.append((b"x-request-id", request_id.encode()))
                if b"cache-control" not in present:
                    headers.append(_NO_STORE)
                headers.extend(header for header in _EVERY_RESPONSE if header[0] not in present)
                if shared and not by_origin and not from_browser:
                    # A shared cache must not hand this answer, without CORS headers, to a browser on a listed
                    # origin. (With an Origin, core.cors, outside this middleware, says Vary itself.)
                    headers.append(_VARY_ORIGIN)
                if html:
                    if b"content-security-policy" not in present:
                        headers.append(_PAGE_POLICY)
                    if b"x-frame-options" not in present:
                        headers.append(_FRAME_OPTIONS)
                message["headers"] = headers
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await _send_problem(
                    send_with_context,
                    413,
                    "body-too-large",
                    "Content too large",
                    f"The request body is larger than {self.max_body_bytes} bytes",
                    scope.get("path", ""),
                    request_id,
                )
                return
            await self.app(scope, _replay(body, receive), send_with_context)
        except Exception:
            log.exception("unhandled error")
            if not response_started:
                await _send_problem(
                    send_with_context,
                    500,
                    "internal-error",
                    "Internal error",
                    "An unexpected error occurred; it is logged under this request id",
                    scope.get("path", ""),
                    request_id,
                )
        finally:
            elapsed = time.perf_counter() - started
            route_path = getattr(scope.get("route"), "path", None)
            # Included routers' routes carry their path below the /v1 prefix; metrics want the full template.
            prefix = "/v1" if scope["path"].startswith("/v1/") else ""
            template = prefix + route_path if route_path else "unmatched"
            method = "HEAD" if head else scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past `limit` (Content-Length or chunked: the bytes count)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would deliver it

    return replay


async def _send_problem(
    send: Send, status: int, slug: str, title: str, detail: str, path: str, request_id: str
) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
