"""Every table, imported in one place for Alembic and the schema tests."""

from sqlmodel import SQLModel

from app.audit.models import AuditChainHead, AuditEvent
from app.auth.models import ApiClient
from app.catalog.models import PolicyVersion, Purpose
from app.consent.models import ConsentEvent, ConsentState
from app.decisions.models import Objection
from app.idempotency.models import IdempotencyRecord
from app.marketing.models import ContactOptOut, MarketingPreference
from app.subjects.models import PersonalDataItem, Subject, SubjectContact
from app.webhooks.models import OutboxEvent

metadata = SQLModel.metadata

__all__ = ["ApiClient", "AuditChainHead", "AuditEvent", "ConsentEvent", "ConsentState", "ContactOptOut",
           "IdempotencyRecord", "MarketingPreference", "Objection", "OutboxEvent", "PersonalDataItem", "PolicyVersion",
           "Purpose", "Subject", "SubjectContact", "metadata"]
