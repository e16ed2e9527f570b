"""The /v1 API: one router per domain, each included into the app under PREFIX (main.create_app).

Flat on purpose: FastAPI (0.165) matches a router included into another router level by level, twice per
level, on every request; the nesting cost a consent write more than its ES256 signature did. Routes are
matched in this order, so the hot paths (consent writes, visitors' cookie choices, decisions, marketing
checks) come first."""

from fastapi import APIRouter

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.breaches.router import router as breaches_router
from app.catalog.router import router as catalog_router
from app.consent.router import router as consent_router
from app.decisions.router import router as decisions_router
from app.disclosures.router import router as disclosures_router
from app.holds.router import router as holds_router
from app.marketing.router import router as marketing_router
from app.notices.router import router as notices_router
from app.processors.router import router as processors_router
from app.records.router import router as records_router
from app.retention.router import router as retention_router
from app.rights_requests.router import router as rights_requests_router
from app.subjects.router import router as subjects_router
from app.visitors.router import router as visitors_router
from app.webhooks.router import router as webhooks_router

PREFIX = "/v1"
ROUTERS: list[APIRouter] = [
    consent_router,
    visitors_router,
    decisions_router,
    marketing_router,
    subjects_router,
    disclosures_router,
    processors_router,
    rights_requests_router,
    catalog_router,
    auth_router,
    audit_router,
    holds_router,
    retention_router,
    records_router,
    webhooks_router,
    breaches_router,
    notices_router,
]
