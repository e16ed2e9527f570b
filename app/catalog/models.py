"""The purpose catalog, the versions of the privacy notice, and the website's cookie declaration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, UniqueConstraint, false
from sqlmodel import Column, Field, SQLModel, String

from app.core.time import utc_now
from app.core.types import JSONColumn, UTCDateTime


class Purpose(SQLModel, table=True):
    __tablename__ = "purpose"

    code: str = Field(sa_type=String(64), primary_key=True)
    name: dict[str, str] = Field(sa_type=JSONColumn)
    description: dict[str, str] = Field(sa_type=JSONColumn)
    legal_basis: str = Field(sa_type=String(30))
    retention: dict[str, Any] = Field(sa_type=JSONColumn)
    # Where a data category is kept differently from the purpose's rule: {category: rule}.
    retention_by_category: dict[str, Any] = Field(default_factory=dict, sa_type=JSONColumn)
    categories: list[str] = Field(sa_type=JSONColumn)
    subject_categories: list[str] = Field(default_factory=list, sa_type=JSONColumn)
    # A consent grant from the web carrying Sec-GPC: 1 is recorded as a withdrawal for these purposes.
    gpc: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The marketing channels the purpose is sent by: once the subject is opted out of every one of them, the
    # purpose's consent is withdrawn (method `unsubscribe`) and decisions answer `opted_out`.
    channels: list[str] = Field(default_factory=list, sa_type=JSONColumn)
    # Who else receives the purpose's data, as the notice names them (a receipt's thirdPartyDisclosure).
    recipients: list[str] = Field(default_factory=list, sa_type=JSONColumn)
    # Assessments (GDPR Art. 6(1)(f), Art. 35): a legitimate-interest purpose is used in decisions only with
    # an approved LIA; a high-risk purpose only with a DPIA reference.
    lia_reference: str | None = Field(default=None, sa_type=String(200))
    lia_outcome: str | None = Field(default=None, sa_type=String(20))
    high_risk: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    dpia_reference: str | None = Field(default=None, sa_type=String(200))
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class PolicyVersion(SQLModel, table=True):
    __tablename__ = "policy_version"

    version: str = Field(sa_type=String(32), primary_key=True)
    effective_from: datetime = Field(sa_type=UTCDateTime, index=True)
    published_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    published_by: str = Field(sa_type=String(200))
    # {"sv": [{"id", "title", "body", "purposes"?}, ...], "en": [...]}
    sections: dict[str, list[dict[str, Any]]] = Field(sa_type=JSONColumn)


class CatalogVersion(SQLModel, table=True):
    """One row: a counter every change to the catalog (purposes, notices) moves on, in the change's own
    transaction. Each worker caches the catalog and knows which version it holds (catalog.cache)."""

    __tablename__ = "catalog_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=1)


class CookieCategory(SQLModel, table=True):
    """A category of the website's cookies. `necessary` needs no consent; every other maps to a consent
    purpose, whose consent is what allows the category."""

    __tablename__ = "cookie_category"

    code: str = Field(sa_type=String(32), primary_key=True)
    position: int
    name: dict[str, str] = Field(sa_type=JSONColumn)
    description: dict[str, str] = Field(sa_type=JSONColumn)
    required: bool
    purpose: str | None = Field(default=None, sa_column=Column(String(64), ForeignKey("purpose.code")))
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Cookie(SQLModel, table=True):
    """One cookie (or like storage) the website sets: the declaration visitors read before they choose."""

    __tablename__ = "cookie"
    __table_args__ = (UniqueConstraint("name", "provider", name="uq_cookie_name_provider"),)

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(sa_type=String(200))
    provider: str = Field(sa_type=String(200))
    category: str = Field(
        sa_column=Column(String(32), ForeignKey("cookie_category.code"), nullable=False, index=True)
    )
    duration: dict[str, str] = Field(sa_type=JSONColumn)
    description: dict[str, str] = Field(sa_type=JSONColumn)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
