"""create_app(): configuration, middleware, problem handlers and routers. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import api
from app.auth.deps import browser_callable, openapi_access, security_schemes
from app.core import openapi
from app.core.config import Settings
from app.core.cors import BrowserCORS
from app.core.db import create_engine
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.migrate import head_revision
from app.opendsr.router import PREFIX as OPENDSR_PREFIX
from app.opendsr.router import router as opendsr_router
from app.ops.router import router as ops_router
from app.privacy_center.router import router as center_router
from app.runtime import Runtime
from app.web.router import router as web_router

DESCRIPTION = """\
WeSafe's privacy promises, enforced: consent and its withdrawal, marketing opt-outs, the rights of data
subjects, disclosures to processors and retention.

**Authentication.** A bearer JWT with the claims `iss`, `aud`, `exp`, `iat`, `sub` and `role`
(`subject`, `staff` or `processor`); staff tokens carry space-separated `scope`s. API clients get tokens
from `POST /v1/auth/token`; operators mint them with `privacy token`. Each operation names the staff scopes it
needs (the `oauth2` scheme), whether subjects or processors may call it (`bearerAuth`), and its roles
(`x-roles`).

**Creations** answer 201 with a `Location` header naming what was created. Timestamps are RFC 3339 in UTC
(`2026-11-25T10:00:00Z`).

**Errors** are RFC 9457 problem details (`application/problem+json`). A subject asking for another
subject's data gets 404, exactly as for an id that does not exist.

**Lists** take `limit` (1 to 500, default 50) and an opaque `cursor`, and answer
`{"items": [...], "next_cursor": ...}`.

**Retries.** Creating POSTs accept an `Idempotency-Key` header.
"""

TAGS = [
    {"name": "auth", "description": "Tokens for API clients, and the clients themselves."},
    {
        "name": "catalog",
        "description": "The controller, the processing purposes and the privacy notice (public).",
    },
    {"name": "subjects", "description": "Data subjects and the register of personal data held on them."},
    {
        "name": "notices",
        "description": "The privacy notice reaching people (GDPR Art. 13, 14): who is owed it, its mailing.",
    },
    {
        "name": "consent",
        "description": "Consent per purpose, with evidence and signed receipts; withdrawal in one call.",
    },
    {
        "name": "marketing",
        "description": "Channel preferences, opt-outs by contact, and the check before a send.",
    },
    {"name": "decisions", "description": "May we process this subject's data for this purpose?"},
    {
        "name": "rights-requests",
        "description": "Access, rectification, erasure, restriction, objection and "
        "portability, against the statutory deadline.",
    },
    {"name": "disclosures", "description": "The disclosure log: who received a subject's data."},
    {
        "name": "processors",
        "description": "The processor registry, and the tasks addressed to processors (GDPR Art. 19).",
    },
    {"name": "legal-holds", "description": "Subjects whose data must be kept for legal claims."},
    {"name": "retention", "description": "Deleting, anonymizing or keeping data on schedule."},
    {"name": "records", "description": "The record of processing activities (GDPR Art. 30)."},
    {"name": "webhooks", "description": "Event delivery to integrators (Standard Webhooks)."},
    {
        "name": "opendsr",
        "description": "OpenDSR 2.0 (formerly OpenGDPR) at /opendsr/v2: a controller's DSR system files "
        "access, portability and erasure requests as rights requests (docs/opendsr.md).",
    },
    {"name": "audit", "description": "Who read or changed what, when: append-only and hash-chained."},
    {"name": "operations", "description": "Liveness, readiness and metrics."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check()
    configure_logging(settings.log_level)
    runtime = Runtime.build(settings)
    engine = create_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        listeners = (
            []
            if settings.is_sqlite
            else [
                runtime.catalog.listen(settings.database_url),
                runtime.revoked_clients.listen(settings.database_url),
            ]
        )
        yield
        for listener in listeners:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await engine.dispose()

    app = FastAPI(
        title="WeSafe Privacy API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        contact={"name": settings.controller_name, "email": settings.controller_email},
        # Served offline by app.web (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.engine = engine
    app.state.sessionmaker = runtime.sessions(engine)
    app.state.expected_revision = head_revision()

    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    for router in api.ROUTERS:
        app.include_router(router, prefix=api.PREFIX)
    app.include_router(ops_router)
    app.include_router(web_router)
    app.include_router(center_router)
    app.include_router(opendsr_router, prefix=OPENDSR_PREFIX)
    # The API's routers hold their routes below the prefix (app.routes holds the routers, not their routes).
    api_routes = [route for router in api.ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    browser_paths = [
        re.compile("^" + re.escape(api.PREFIX) + route.path_regex.pattern.removeprefix("^"))
        for route in api_routes
        if browser_callable(route)
    ]
    app.add_middleware(
        BrowserCORS,
        origins=settings.allowed_origins,
        paths=browser_paths,
        max_age=settings.cors_max_age_seconds,
    )
    app.openapi = lambda: openapi.build(  # type: ignore[method-assign]  # FastAPI's documented override
        app,
        [*api_routes, *(r for r in [*ops_router.routes, *opendsr_router.routes] if isinstance(r, APIRoute))],
        access=openapi_access,
        security_schemes=security_schemes(api.PREFIX + "/auth/token"),
    )
    return app
