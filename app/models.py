"""Every table, imported in one place for Alembic and the schema tests."""

from sqlmodel import SQLModel

from app.audit.models import AuditChainHead, AuditEvent
from app.auth.models import ApiClient, LoginAttempt, LoginCode
from app.breaches.models import Breach, BreachQuery, BreachSubject
from app.catalog.models import CatalogVersion, Cookie, CookieCategory, PolicyVersion, Purpose
from app.consent.models import ConsentEvent, ConsentState
from app.decisions.models import Objection
from app.disclosures.models import Disclosure
from app.holds.models import LegalHold
from app.idempotency.models import IdempotencyRecord
from app.marketing.models import ContactOptOut, MarketingPreference
from app.notices.models import NoticeDelivery, NoticeDue
from app.privacy_center.models import CenterSession
from app.processors.models import Processor, ProcessorTask
from app.retention.models import RetentionRun
from app.rights_requests.models import RightsRequest, RightsRequestEvent
from app.subjects.models import PersonalDataItem, Subject, SubjectContact
from app.visitors.models import Visitor, VisitorConsentEvent
from app.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = SQLModel.metadata

__all__ = [
    "ApiClient",
    "AuditChainHead",
    "AuditEvent",
    "Breach",
    "BreachQuery",
    "BreachSubject",
    "CatalogVersion",
    "CenterSession",
    "ConsentEvent",
    "ConsentState",
    "ContactOptOut",
    "Cookie",
    "CookieCategory",
    "Disclosure",
    "IdempotencyRecord",
    "LegalHold",
    "LoginAttempt",
    "LoginCode",
    "MarketingPreference",
    "NoticeDelivery",
    "NoticeDue",
    "Objection",
    "OutboxEvent",
    "PersonalDataItem",
    "PolicyVersion",
    "Processor",
    "ProcessorTask",
    "Purpose",
    "RetentionRun",
    "RightsRequest",
    "RightsRequestEvent",
    "Subject",
    "SubjectContact",
    "Visitor",
    "VisitorConsentEvent",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
