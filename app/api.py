"""The /v1 router: one include per domain. Routes are matched in this order, so the hot paths
(decisions, marketing checks, consent writes) come first."""

from fastapi import APIRouter

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.catalog.router import router as catalog_router
from app.consent.router import router as consent_router
from app.decisions.router import router as decisions_router
from app.disclosures.router import router as disclosures_router
from app.holds.router import router as holds_router
from app.marketing.router import router as marketing_router
from app.processors.router import router as processors_router
from app.records.router import router as records_router
from app.retention.router import router as retention_router
from app.rights_requests.router import router as rights_requests_router
from app.subjects.router import router as subjects_router
from app.webhooks.router import router as webhooks_router

router = APIRouter(prefix="/v1")
router.include_router(decisions_router)
router.include_router(marketing_router)
router.include_router(consent_router)
router.include_router(subjects_router)
router.include_router(disclosures_router)
router.include_router(processors_router)
router.include_router(rights_requests_router)
router.include_router(catalog_router)
router.include_router(auth_router)
router.include_router(audit_router)
router.include_router(holds_router)
router.include_router(retention_router)
router.include_router(records_router)
router.include_router(webhooks_router)
