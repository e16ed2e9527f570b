"""CORS for the endpoints a browser on the website calls, and for no other: Starlette's CORSMiddleware,
applied by path. Staff and processor endpoints never answer a browser on another origin."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Sec-GPC"]
EXPOSED_HEADERS = ["X-Request-ID"]


class BrowserCORS:
    """CORS headers (and preflight answers) for requests to `paths` from `origins`; other requests pass
    through untouched, so an unlisted origin, or a path not in `paths`, gets no CORS headers."""

    def __init__(
        self, app: ASGIApp, *, origins: Sequence[str], paths: Sequence[re.Pattern[str]], max_age: int
    ) -> None:
        self.app, self.paths = app, paths
        self.cors = CORSMiddleware(
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
        if (
            scope["type"] == "http"
            and any(name == b"origin" for name, _ in scope["headers"])
            and any(p.match(scope["path"]) for p in self.paths)
        ):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
