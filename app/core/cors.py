"""CORS for the endpoints a browser on the website calls, and for no other: Starlette's CORSMiddleware,
applied by path and origin. Staff and processor endpoints never answer a browser on another origin, and no
endpoint answers an origin that is not listed with any CORS header (Starlette's own would still send its
preflight headers and `Access-Control-Expose-Headers` to any origin)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Sec-GPC"]
EXPOSED_HEADERS = ["X-Request-ID"]


class BrowserCORS:
    """CORS headers (and preflight answers) for requests to `paths` from `origins`; other requests pass
    through untouched, so an unlisted origin, or a path not in `paths`, gets no CORS headers. A preflight
    from an unlisted origin is answered as the app answers OPTIONS without CORS (405)."""

    def __init__(
        self, app: ASGIApp, *, origins: Sequence[str], paths: Sequence[re.Pattern[str]], max_age: int
    ) -> None:
        self.app, self.paths = app, paths
        self.origins = frozenset(origin.encode("latin-1") for origin in origins)
        self.cors = _ProblemCORS(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only a browser sends Origin: server-to-server calls (the CRM, processors) pass at the cost of one
        # look at the headers, without matching the path.
        origin = (
            next((value for name, value in scope["headers"] if name == b"origin"), None)
            if scope["type"] == "http"
            else None
        )
        if origin is None or not any(p.match(scope["path"]) for p in self.paths):
            await self.app(scope, receive, send)
        elif origin in self.origins:
            await self.cors(scope, receive, send)
        else:
            # No CORS header, but the answer still depends on the origin (a cache must not give it to a listed
            # one).
            await self.app(scope, receive, _vary_by_origin(send))


def _vary_by_origin(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).add_vary_header("Origin")
        await send(message)

    return wrapped


class _ProblemCORS(CORSMiddleware):
    """Starlette's CORS, whose refused preflight (a method or header not allowed) is problem+json like every
    other error, not plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        return problem_response(
            None,
            400,
            f"{bytes(response.body).decode()}: Access-Control-Allow-Methods and -Headers say what is allowed",
            slug="malformed-request",
            headers={
                name: value
                for name, value in response.headers.items()
                if name.startswith("access-control-") or name == "vary"
            },
        )
