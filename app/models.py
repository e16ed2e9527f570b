"""Every table, imported in one place for Alembic and the schema tests."""

from sqlmodel import SQLModel

from app.audit.models import AuditChainHead, AuditEvent
from app.auth.models import ApiClient
from app.catalog.models import PolicyVersion, Purpose
from app.idempotency.models import IdempotencyRecord
from app.subjects.models import PersonalDataItem, Subject

metadata = SQLModel.metadata

__all__ = ["ApiClient", "AuditChainHead", "AuditEvent", "IdempotencyRecord", "PersonalDataItem", "PolicyVersion",
           "Purpose", "Subject", "metadata"]
