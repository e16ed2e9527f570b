"""The purpose catalog, the controller's identity, and the privacy notice in force."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog.models import PolicyVersion, Purpose
from app.catalog.schemas import (
    ControllerRead,
    LegalBasis,
    PolicyPublish,
    PolicyRead,
    PurposeCreate,
    PurposeUpdate,
    SupervisoryAuthority,
)
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.security import Principal
from app.core.time import utc_now
from app.core.types import UTCDateTime

IMY = SupervisoryAuthority(
    name="Integritetsskyddsmyndigheten (IMY)", former_name="Datainspektionen", website="https://www.imy.se",
    email="imy@imy.se", address="Box 8114, 104 20 Stockholm, Sweden",
)

# Clocks drift; a notice published "now" by another node may carry a timestamp a moment ago.
_PUBLISH_SKEW = timedelta(minutes=5)


class PurposeNotFound(NotFound):
    title = "Purpose not found"


def controller(settings: Settings) -> ControllerRead:
    return ControllerRead(name=settings.controller_name, contact_email=settings.controller_email,
                          website=settings.controller_website, supervisory_authority=IMY)


async def list_purposes(session: AsyncSession) -> Sequence[Purpose]:
    return (await session.execute(select(Purpose).order_by(Purpose.code))).scalars().all()


async def get_purpose(session: AsyncSession, code: str) -> Purpose:
    purpose = await session.get(Purpose, code)
    if purpose is None:
        raise PurposeNotFound(f"No purpose with code {code!r}")
    return purpose


async def require_purpose(session: AsyncSession, code: str, *, loc: list[str | int]) -> Purpose:
    """A purpose named in a request body: unknown is a 422 on that field, not a 404."""
    purpose = await session.get(Purpose, code)
    if purpose is None:
        raise Unprocessable(f"Unknown purpose {code!r}; see GET /v1/purposes", loc=loc)
    return purpose


async def purposes_with_basis(session: AsyncSession, basis: LegalBasis) -> set[str]:
    rows = await session.execute(select(Purpose.code).where(Purpose.legal_basis == basis))
    return set(rows.scalars())


# Path segments a purpose code would collide with (GET /v1/subjects/{id}/consents/history).
RESERVED_CODES = {"history"}


async def create_purpose(session: AsyncSession, data: PurposeCreate, *, actor: Principal) -> Purpose:
    if data.code in RESERVED_CODES:
        raise Conflict(f"{data.code!r} is reserved and cannot name a purpose")
    if await session.get(Purpose, data.code) is not None:
        raise Conflict(f"A purpose with code {data.code!r} already exists")
    purpose = Purpose(**data.model_dump(mode="json"))
    session.add(purpose)
    await session.flush()
    await audit.record(session, actor, "purpose.created", target=purpose.code)
    return purpose


async def update_purpose(session: AsyncSession, code: str, data: PurposeUpdate, *, actor: Principal) -> Purpose:
    purpose = await get_purpose(session, code)
    for field, value in data.model_dump(mode="json", exclude_unset=True).items():
        setattr(purpose, field, value)
    purpose.updated_at = utc_now()
    await session.flush()
    await audit.record(session, actor, "purpose.updated", target=purpose.code)
    return purpose


# --- the privacy notice ------------------------------------------------------------------------------------


def _render(policy: PolicyVersion, language: str) -> PolicyRead:
    return PolicyRead(version=policy.version, language=language, effective_from=policy.effective_from,
                      published_at=policy.published_at, sections=policy.sections[language])


async def list_policies(session: AsyncSession) -> Sequence[PolicyVersion]:
    statement = select(PolicyVersion).order_by(PolicyVersion.effective_from.desc())
    return (await session.execute(statement)).scalars().all()


async def current_policy_version(session: AsyncSession) -> PolicyVersion:
    statement = (select(PolicyVersion).where(PolicyVersion.effective_from <= utc_now())
                 .order_by(PolicyVersion.effective_from.desc()).limit(1))
    policy = (await session.execute(statement)).scalar_one_or_none()
    if policy is None:
        raise NotFound("No privacy notice is in force yet")
    return policy


_PURPOSES, _POLICIES = Purpose.__table__, PolicyVersion.__table__
_IN_FORCE = (select(_POLICIES.c.version).where(_POLICIES.c.effective_from <= bindparam("now", type_=UTCDateTime()))
             .order_by(_POLICIES.c.effective_from.desc()).limit(1).scalar_subquery())
_NAMED = select(_POLICIES.c.version).where(_POLICIES.c.version == bindparam("version")).scalar_subquery()


def purpose_and_policy_query(named: bool, *columns: Any) -> Any:
    """One row whatever exists: the purpose's columns (NULL when there is no such purpose), the notice version
    (`version` if it exists when `named`, else the one in force) as `policy_version`, and the caller's `columns`,
    so that a write path asks for everything it checks in one round trip. Parameters: code, now, version."""
    one = select(literal(1).label("one")).subquery("one")
    return select(*_PURPOSES.c, (_NAMED if named else _IN_FORCE).label("policy_version"), *columns).select_from(
        one.outerjoin(_PURPOSES, _PURPOSES.c.code == bindparam("code")))


def purpose_and_policy_from(row: Mapping[str, Any]) -> tuple[Purpose | None, str | None]:
    """The purpose (a detached copy) and the notice version from a row of purpose_and_policy_query."""
    purpose = None if row["code"] is None else Purpose.model_construct(**{c: row[c] for c in _PURPOSES.c.keys()})
    return purpose, row["policy_version"]


async def current_policy(session: AsyncSession, language: str) -> PolicyRead:
    return _render(await current_policy_version(session), language)


async def get_policy_version(session: AsyncSession, version: str) -> PolicyVersion:
    policy = await session.get(PolicyVersion, version)
    if policy is None:
        raise NotFound(f"No privacy notice version {version!r}")
    return policy


async def get_policy(session: AsyncSession, version: str, language: str) -> PolicyRead:
    return _render(await get_policy_version(session, version), language)


async def publish_policy(session: AsyncSession, data: PolicyPublish, *, actor: Principal) -> PolicyVersion:
    now = utc_now()
    effective_from = data.effective_from or now
    if effective_from < now - _PUBLISH_SKEW:
        raise Unprocessable("A notice cannot take effect in the past", loc=["body", "effective_from"])
    ids = [section.id for section in data.sections]
    if len(set(ids)) != len(ids):
        raise Unprocessable("Section ids must be unique", loc=["body", "sections"])
    if await session.get(PolicyVersion, data.version) is not None:
        raise Conflict(f"Version {data.version!r} is already published; versions are never changed")
    policy = PolicyVersion(version=data.version, effective_from=effective_from, published_at=now,
                           published_by=actor.sub, sections=data.by_language())
    session.add(policy)
    await session.flush()
    await audit.record(session, actor, "policy.published", target=policy.version)
    return policy
