"""create_app(): configuration, middleware, problem handlers and routers. No logic lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app import api
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.db import create_engine, create_sessionmaker, create_statement_engine
from app.core.errors import Problem, install_error_handlers
from app.core.logging import configure_logging
from app.core.mail import Mailer
from app.core.middleware import RequestContextMiddleware
from app.core.migrate import head_revision
from app.core.security import TokenVerifier
from app.ops.router import router as ops_router

DESCRIPTION = """\
WeSafe's privacy promises, enforced: consent and its withdrawal, marketing opt-outs, the rights of data
subjects, disclosures to processors and retention.

**Authentication.** A bearer JWT with the claims `iss`, `aud`, `exp`, `iat`, `sub` and `role`
(`subject`, `staff` or `processor`); staff tokens carry space-separated `scope`s. API clients get tokens
from `POST /v1/auth/token`; operators mint them with `privacy token`.

**Errors** are RFC 9457 problem details (`application/problem+json`). A subject asking for another
subject's data gets 404, exactly as for an id that does not exist.

**Lists** take `limit` (1 to 500, default 50) and an opaque `cursor`, and answer
`{"items": [...], "next_cursor": ...}`.

**Retries.** Creating POSTs accept an `Idempotency-Key` header.
"""

TAGS = [
    {"name": "auth", "description": "Tokens for API clients, and the clients themselves."},
    {"name": "catalog", "description": "The controller, the processing purposes and the privacy notice (public)."},
    {"name": "subjects", "description": "Data subjects and the register of personal data held on them."},
    {"name": "consent", "description": "Consent per purpose, with evidence and signed receipts; withdrawal in "
                                       "one call."},
    {"name": "marketing", "description": "Channel preferences, opt-outs by contact, and the check before a send."},
    {"name": "decisions", "description": "May we process this subject's data for this purpose?"},
    {"name": "rights-requests", "description": "Access, rectification, erasure, restriction, objection and "
                                               "portability, against the statutory deadline."},
    {"name": "disclosures", "description": "The disclosure log: who received a subject's data."},
    {"name": "processors", "description": "The processor registry, and the tasks addressed to processors "
                                          "(GDPR Art. 19)."},
    {"name": "legal-holds", "description": "Subjects whose data must be kept for legal claims."},
    {"name": "retention", "description": "Deleting, anonymizing or keeping data on schedule."},
    {"name": "records", "description": "The record of processing activities (GDPR Art. 30)."},
    {"name": "webhooks", "description": "Event delivery to integrators (Standard Webhooks)."},
    {"name": "audit", "description": "Who read or changed what, when: append-only and hash-chained."},
    {"name": "operations", "description": "Liveness, readiness and metrics."},
]


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check()
    configure_logging(settings.log_level)
    engine = create_engine(settings)
    statement_engine = create_statement_engine(settings, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()
        await statement_engine.dispose()

    app = FastAPI(
        title="WeSafe Privacy API", version="1.0.0", description=DESCRIPTION, openapi_tags=TAGS,
        lifespan=lifespan, generate_unique_id_function=_operation_id,
        contact={"name": settings.controller_name, "email": settings.controller_email},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.statement_sessionmaker = create_sessionmaker(statement_engine,
                                                           autocommit=statement_engine is not engine)
    app.state.token_verifier = TokenVerifier(settings)
    app.state.keys = Keys(settings)
    app.state.mailer = Mailer(settings)
    app.state.expected_revision = head_revision()

    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    for router in api.ROUTERS:
        app.include_router(router, prefix=api.PREFIX)
    app.include_router(ops_router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                             tags=app.openapi_tags, contact=app.contact)
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
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
        app.openapi_schema = schema
    return app.openapi_schema
