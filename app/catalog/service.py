"""The purpose catalog, the controller's identity, the privacy notice in force, and the cookie declaration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal
from app.catalog import repository
from app.catalog.cache import Catalog as Catalog  # re-exported for other domains
from app.catalog.cache import purpose_texts
from app.catalog.models import Cookie, PolicyVersion
from app.catalog.models import CookieCategory as CookieCategory  # re-exported for other domains
from app.catalog.models import Purpose as Purpose  # re-exported for other domains
from app.catalog.schemas import (
    ASSESSMENT_FIELDS,
    ControllerRead,
    CookieCategoryCode,
    CookieCategoryRead,
    CookieCategoryUpdate,
    CookieCreate,
    CookieDeclaration,
    CookieRead,
    CookieUpdate,
    LegalBasis,
    PolicyPublish,
    PolicyRead,
    PolicySection,
    PurposeCreate,
    PurposeUpdate,
    SupervisoryAuthority,
)
from app.core.config import Settings
from app.core.db import on_commit, transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.time import rfc3339, utc_now
from app.notices import service as notices
from app.processors import service as processors
from app.webhooks import service as webhooks
from app.webhooks.schemas import EventType

IMY = SupervisoryAuthority(
    name="Integritetsskyddsmyndigheten (IMY)",
    former_name="Datainspektionen",
    website="https://www.imy.se",
    email="imy@imy.se",
    address="Box 8114, 104 20 Stockholm, Sweden",
)

# Clocks drift; a notice published "now" by another node may carry a timestamp a moment ago.
_PUBLISH_SKEW = timedelta(minutes=5)
# Path segments a purpose code would collide with (GET /v1/subjects/{id}/consents/history).
RESERVED_CODES = {"history"}


class PurposeNotFound(NotFound):
    title = "Purpose not found"


async def _changed(session: AsyncSession) -> None:
    """The catalog moved on: other workers hear it by NOTIFY (or the counter); this one drops its copy as
    soon as the change commits, so that the writer's next request already reads the new catalog."""
    await repository.changed(session)
    on_commit(session, runtime.of(session).catalog.invalidate)


def controller(settings: Settings) -> ControllerRead:
    return ControllerRead(
        name=settings.controller_name,
        contact_email=settings.controller_email,
        website=settings.controller_website,
        supervisory_authority=IMY,
    )


async def cached(session: AsyncSession, *, version: int | None = None) -> Catalog:
    """The worker's copy of the catalog (catalog.cache), at least as fresh as `version` if given."""
    return await runtime.of(session).catalog.current(session, version=version)


async def held(session: AsyncSession) -> Catalog:
    """The worker's copy as it is, with no read to check it (catalog.cache.CatalogCache.held)."""
    return await runtime.of(session).catalog.held(session)


def notice_version(snapshot: Catalog, named: str | None, now: datetime, *, loc: list[str | int]) -> str:
    """The notice version a choice is recorded under: the one named (it must exist: 422 at `loc`), or the one
    in force (none yet: 404)."""
    if named is not None:
        if not snapshot.has_notice(named):
            raise Unprocessable(f"No privacy notice version {named!r}", loc=loc)
        return named
    in_force = snapshot.notice_in_force(now)
    if in_force is None:
        raise NotFound("No privacy notice is in force yet")
    return in_force


async def list_purposes(session: AsyncSession) -> Sequence[Purpose]:
    return await repository.list_purposes(session)


async def get_purpose(session: AsyncSession, code: str) -> Purpose:
    purpose = await repository.get_purpose(session, code)
    if purpose is None:
        raise PurposeNotFound(f"No purpose with code {code!r}")
    return purpose


async def require_purpose(session: AsyncSession, code: str, *, loc: list[str | int]) -> Purpose:
    """A purpose named in a request body: unknown is a 422 on that field, not a 404. From the cached catalog:
    purposes are never removed, so one found there exists; one not found there is looked for once more."""
    catalog = await cached(session)
    purpose = catalog.purpose(code)
    if purpose is None:
        runtime.of(session).catalog.invalidate()
        purpose = (await cached(session)).purpose(code)
    if purpose is None:
        raise Unprocessable(f"Unknown purpose {code!r}; see GET /v1/purposes", loc=loc)
    return purpose


async def purposes_with_basis(session: AsyncSession, basis: LegalBasis) -> set[str]:
    return await repository.codes_with_basis(session, basis)


async def _audit_assessments(
    session: AsyncSession, actor: Principal, code: str, changes: dict[str, Any]
) -> None:
    """Setting a purpose's assessments is audited on its own (which fields, never their values)."""
    named = sorted(ASSESSMENT_FIELDS & changes.keys())
    if named:
        await audit.record(session, actor, "purpose.assessed", target=f"{code}:{','.join(named)}")


async def create_purpose(session: AsyncSession, data: PurposeCreate, *, actor: Principal) -> Purpose:
    if data.code in RESERVED_CODES:
        raise Conflict(f"{data.code!r} is reserved and cannot name a purpose")
    await transaction(session)
    if await repository.get_purpose(session, data.code) is not None:
        raise Conflict(f"A purpose with code {data.code!r} already exists")
    now = utc_now()
    await repository.insert_purpose(
        session, {**data.model_dump(mode="json"), "created_at": now, "updated_at": now}
    )
    await _changed(session)
    await audit.record(session, actor, "purpose.created", target=data.code)
    await _audit_assessments(session, actor, data.code, data.model_dump(exclude_defaults=True))
    return await get_purpose(session, data.code)


async def update_purpose(
    session: AsyncSession, code: str, data: PurposeUpdate, *, actor: Principal
) -> Purpose:
    await transaction(session)
    await get_purpose(session, code)
    changes = data.model_dump(mode="json", exclude_unset=True)
    await repository.update_purpose(session, code, {**changes, "updated_at": utc_now()})
    await _changed(session)
    await audit.record(session, actor, "purpose.updated", target=code)
    await _audit_assessments(session, actor, code, changes)
    return await get_purpose(session, code)


# --- the privacy notice ------------------------------------------------------------------------------------


def _render(policy: PolicyVersion, language: str) -> PolicyRead:
    return PolicyRead(
        version=policy.version,
        language=language,
        effective_from=policy.effective_from,
        published_at=policy.published_at,
        sections=policy.sections[language],
    )


async def list_policies(session: AsyncSession) -> Sequence[PolicyVersion]:
    return await repository.list_policies(session)


TRANSFERS_SECTION = "third-country-transfers"  # the notice in force's generated last section


async def current_policy_version(session: AsyncSession) -> PolicyVersion:
    policy = await repository.policy_in_force(session, utc_now())
    if policy is None:
        raise NotFound("No privacy notice is in force yet")
    return policy


async def _in_force(session: AsyncSession, policy: PolicyVersion, language: str) -> PolicyRead:
    rendered = _render(policy, language)
    # Generated from the live processor registry: the notice in force never lags it (docs/behaviour.md).
    title, body = await processors.notice_transfers(session, language)
    rendered.sections.append(PolicySection(id=TRANSFERS_SECTION, title=title, body=body))
    return rendered


async def current_policy(session: AsyncSession, language: str) -> PolicyRead:
    return await _in_force(session, await current_policy_version(session), language)


async def get_policy(session: AsyncSession, version: str, language: str) -> PolicyRead:
    """A version as a person reads it on the privacy center (where the notice mails link): the one in force
    as GET /v1/policies/current serves it, with its generated transfers section; any other as published."""
    policy = await get_policy_version(session, version)
    in_force = await repository.policy_in_force(session, utc_now())
    if in_force is not None and in_force.version == policy.version:
        return await _in_force(session, policy, language)
    return _render(policy, language)


async def get_policy_version(session: AsyncSession, version: str) -> PolicyVersion:
    policy = await repository.get_policy(session, version)
    if policy is None:
        raise NotFound(f"No privacy notice version {version!r}")
    return policy


async def published_policy(session: AsyncSession, version: str, language: str) -> PolicyRead:
    """A version exactly as it was published (GET /v1/policies/{version})."""
    return _render(await get_policy_version(session, version), language)


async def publish_policy(session: AsyncSession, data: PolicyPublish, *, actor: Principal) -> PolicyVersion:
    now = utc_now()
    effective_from = data.effective_from or now
    if effective_from < now - _PUBLISH_SKEW:
        raise Unprocessable("A notice cannot take effect in the past", loc=["body", "effective_from"])
    ids = [section.id for section in data.sections]
    if len(set(ids)) != len(ids):
        raise Unprocessable("Section ids must be unique", loc=["body", "sections"])
    named = sorted({code for section in data.sections for code in section.purposes})
    snapshot = await cached(session)
    for code in named:
        if snapshot.purpose(code) is None:
            raise Unprocessable(f"Unknown purpose {code!r}; see GET /v1/purposes", loc=["body", "sections"])
    await transaction(session)
    if await repository.get_policy(session, data.version) is not None:
        raise Conflict(f"Version {data.version!r} is already published; versions are never changed")
    previous = await repository.policy_in_force(session, effective_from)
    sections = data.by_language()
    await repository.insert_policy(
        session,
        {
            "version": data.version,
            "effective_from": effective_from,
            "published_at": now,
            "published_by": actor.sub,
            "sections": sections,
        },
    )
    await _changed(session)
    changes = _changes(previous.sections if previous else None, sections)
    owed = 0
    if previous is not None and changes.sections:
        owed = await notices.owe_changed(
            session, version=data.version, effective_from=effective_from, purposes=changes.concerning
        )
    await webhooks.emit(
        session,
        EventType.notice_published,
        {
            "version": data.version,
            "effective_from": rfc3339(effective_from),
            "previous_version": previous.version if previous else None,
            "changed_sections": changes.sections,
            "renewal_due_purposes": changes.renewal_due,
            "subjects_to_notify": owed,
        },
    )
    await audit.record(session, actor, "policy.published", target=data.version)
    return await get_policy_version(session, data.version)


@dataclass(frozen=True)
class NoticeChanges:
    """What a new notice version changes against the one in force before it."""

    sections: list[str]  # ids of the sections added, removed or reworded (in either language)
    concerning: list[str] | None  # the purposes those sections describe; None: a general section changed
    renewal_due: list[str]  # the purposes whose text changed: consents given before need renewal


def _changes(
    before: dict[str, list[dict[str, Any]]] | None, after: dict[str, list[dict[str, Any]]]
) -> NoticeChanges:
    """Which sections changed and whom they concern: a section naming purposes concerns the subjects of
    those purposes; one naming none (the controller, the rights...) concerns everyone."""
    if before is None:
        return NoticeChanges([], [], [])

    def by_id(sections: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for language in sorted(sections):
            for section in sections[language]:
                found.setdefault(section["id"], []).append(section)
        return found

    old, new = by_id(before), by_id(after)
    changed = sorted(i for i in old.keys() | new.keys() if old.get(i) != new.get(i))
    purposes: set[str] = set()
    general = False
    for i in changed:
        named = {p for section in old.get(i, []) + new.get(i, []) for p in section.get("purposes", ())}
        purposes |= named
        general = general or not named
    old_texts, new_texts = purpose_texts(before), purpose_texts(after)
    renewal = sorted(p for p in old_texts.keys() | new_texts.keys() if old_texts.get(p) != new_texts.get(p))
    return NoticeChanges(changed, None if general else sorted(purposes), renewal)


# --- the cookie declaration ---------------------------------------------------------------------------------


class CookieNotFound(NotFound):
    title = "Cookie not found"


async def cookie_declaration(session: AsyncSession, language: str) -> CookieDeclaration:
    """The declaration in one language, from the worker's copy of the catalog."""
    snapshot = await cached(session)
    notice = snapshot.notice_in_force(utc_now())
    if notice is None:
        raise NotFound("No privacy notice is in force yet")
    return CookieDeclaration(
        categories=[
            CookieCategoryRead(
                code=CookieCategoryCode(c.code),
                name=c.name[language],
                description=c.description[language],
                required=c.required,
                purpose=c.purpose,
            )
            for c in snapshot.cookie_categories
        ],
        cookies=[
            CookieRead(
                id=c.id,
                name=c.name,
                provider=c.provider,
                category=CookieCategoryCode(c.category),
                duration=c.duration[language],
                description=c.description[language],
            )
            for c in snapshot.cookies
        ],
        notice_version=notice,
    )


async def get_cookie(session: AsyncSession, cookie_id: uuid.UUID) -> Cookie:
    cookie = await repository.get_cookie(session, cookie_id)
    if cookie is None:
        raise CookieNotFound("No such cookie in the declaration")
    return cookie


async def _check_unique(
    session: AsyncSession, name: str, provider: str, *, other_than: uuid.UUID | None
) -> None:
    same = await repository.cookie_named(session, name, provider)
    if same is not None and same.id != other_than:
        raise Conflict(f"The declaration already lists {name!r} set by {provider!r}")


async def create_cookie(session: AsyncSession, data: CookieCreate, *, actor: Principal) -> Cookie:
    await transaction(session)
    await _check_unique(session, data.name, data.provider, other_than=None)
    now, cookie_id = utc_now(), uuid.uuid4()
    await repository.insert_cookie(
        session, {**data.model_dump(mode="json"), "id": cookie_id, "created_at": now, "updated_at": now}
    )
    await _changed(session)
    await audit.record(session, actor, "cookie.created", target=str(cookie_id))
    return await get_cookie(session, cookie_id)


async def update_cookie(
    session: AsyncSession, cookie_id: uuid.UUID, data: CookieUpdate, *, actor: Principal
) -> Cookie:
    await transaction(session)
    cookie = await get_cookie(session, cookie_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    await _check_unique(
        session,
        changes.get("name", cookie.name),
        changes.get("provider", cookie.provider),
        other_than=cookie_id,
    )
    await repository.update_cookie(session, cookie_id, {**changes, "updated_at": utc_now()})
    await _changed(session)
    await audit.record(session, actor, "cookie.updated", target=str(cookie_id))
    return await get_cookie(session, cookie_id)


async def delete_cookie(session: AsyncSession, cookie_id: uuid.UUID, *, actor: Principal) -> None:
    """A cookie the website no longer sets leaves the declaration (the notice versions keep what was said)."""
    await transaction(session)
    if not await repository.delete_cookie(session, cookie_id):
        raise CookieNotFound("No such cookie in the declaration")
    await _changed(session)
    await audit.record(session, actor, "cookie.deleted", target=str(cookie_id))


async def update_cookie_category(
    session: AsyncSession, code: CookieCategoryCode, data: CookieCategoryUpdate, *, actor: Principal
) -> CookieCategory:
    await transaction(session)
    category = await repository.get_cookie_category(session, code)
    if category is None:
        raise NotFound(f"No cookie category {code!r}")
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "purpose" in changes:
        # 409, not 422: the request is well formed; the catalog's state is what refuses it.
        if category.required:
            raise Conflict("Necessary cookies need no consent, so they map to no purpose")
        purpose = await repository.get_purpose(session, changes["purpose"])
        if purpose is None or purpose.legal_basis != LegalBasis.consent:
            raise Conflict(
                f"{changes['purpose']!r} is not a purpose resting on consent; see GET /v1/purposes"
            )
    await repository.update_cookie_category(session, code, {**changes, "updated_at": utc_now()})
    await _changed(session)
    await audit.record(session, actor, "cookie_category.updated", target=str(code))
    updated = await repository.get_cookie_category(session, code)
    assert updated is not None
    return updated
