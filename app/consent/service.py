"""Consent: append-only evidence, the current state as its projection, and a signed receipt for each event."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog import service as catalog
from app.catalog.models import Purpose
from app.catalog.schemas import LegalBasis
from app.consent.models import ConsentEvent, ConsentState
from app.consent.schemas import Channel, ConsentCreate, ConsentMethod, ConsentStatus
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.db import among, execute_together, insert_template, template_values
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.pagination import paginate
from app.core.security import Principal
from app.core.time import utc_now
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

_EVENTS = ConsentEvent.__table__
_STATES = ConsentState.__table__
_APPEND = insert_template(_EVENTS, "consent_event")

# A device clock a little ahead of ours is not a consent from the future.
_CLOCK_SKEW = timedelta(minutes=5)


class NotAConsentPurpose(Unprocessable):
    title = "Not a consent purpose"


def _check_consent_purpose(purpose: Purpose, loc: list[str | int]) -> None:
    if purpose.legal_basis != LegalBasis.consent:
        raise NotAConsentPurpose(f"Purpose {purpose.code!r} rests on {purpose.legal_basis}, not on consent", loc=loc)


def receipt_claims(event: ConsentEvent, purpose: Purpose, settings: Settings) -> dict[str, Any]:
    """A Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 record of the event, as JWT claims."""
    return {
        "iss": settings.jwt_issuer,
        "sub": str(event.subject_id),
        "iat": int(event.recorded_at.timestamp()),
        "jti": str(event.id),
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "SE",
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": f"{event.channel} ({event.method})",
        "consentReceiptID": str(event.id),
        "language": "sv",
        "piiPrincipalId": str(event.subject_id),
        "piiControllers": [{"piiController": settings.controller_name, "contact": "Dataskydd",
                            "email": settings.controller_email, "url": settings.controller_website}],
        "policyUrl": f"{settings.public_base_url}/v1/policies/{event.policy_version}",
        "policyVersion": event.policy_version,
        "services": [{"service": purpose.name.get("en", purpose.code), "purposes": [{
            "purpose": purpose.description.get("en", ""), "purposeCode": purpose.code,
            "purposeCategory": [purpose.code], "legalBasis": purpose.legal_basis, "consentType": "EXPLICIT",
            "piiCategory": purpose.categories, "primaryPurpose": False,
            "termination": purpose.retention.get("description", {}).get("en", ""), "thirdPartyDisclosure": False,
        }]}],
        "sensitive": False,
        "spiCat": [],
        "consentStatus": event.status,
        "consentMethod": event.method,
    }


@functools.cache
def _projection(dialect: str) -> Any:
    """Upsert of the current state that only ever moves forward: atomic in the database, so concurrent
    writers cannot lose an update, and an older event arriving late changes the history only."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_STATES).values(
        {c.name: bindparam(f"consent_state_{c.name}", type_=c.type) for c in _STATES.c})
    newer = tuple_(_STATES.c.occurred_at, _STATES.c.recorded_at) < tuple_(
        statement.excluded.occurred_at, statement.excluded.recorded_at)
    return statement.on_conflict_do_update(
        index_elements=[_STATES.c.subject_id, _STATES.c.purpose],
        set_={c.name: getattr(statement.excluded, c.name) for c in _STATES.c if c.name not in ("subject_id", "purpose")},
        where=newer)


async def _append(
    session: AsyncSession, keys: Keys, settings: Settings, *, subject_id: uuid.UUID, purpose: Purpose,
    status: ConsentStatus, channel: Channel, method: ConsentMethod, policy_version: str, occurred_at: datetime,
    actor: Principal, evidence: dict[str, str | None] | None = None,
) -> ConsentEvent:
    """Append the event, move the projection if the event is the latest, announce it, audit it."""
    evidence = evidence or {}
    event = ConsentEvent(
        id=uuid.uuid4(), subject_id=subject_id, purpose=purpose.code, status=status, channel=channel, method=method,
        policy_version=policy_version, occurred_at=occurred_at, recorded_at=utc_now(), recorded_by=actor.sub,
        evidence_ip=evidence.get("ip"), evidence_user_agent=evidence.get("user_agent"),
        evidence_text_shown=evidence.get("text_shown"), receipt="",
    )
    event.receipt = keys.receipts.sign(receipt_claims(event, purpose, settings))
    state = {"subject_id": subject_id, "purpose": purpose.code, "status": status, "occurred_at": occurred_at,
             "recorded_at": event.recorded_at, "policy_version": policy_version, "event_id": event.id}
    announce = outbox.event_statement(f"consent.{status}", {
        "event_id": str(event.id), "subject_id": str(subject_id), "purpose": purpose.code, "status": status,
        "channel": channel, "method": method, "occurred_at": occurred_at.isoformat()}, subject_id=subject_id)
    link = await audit.lock_chain(session, subject_id)
    # The hot write path: event, projection, outbox and audit in one round trip on PostgreSQL.
    await execute_together(session, [
        (_APPEND, template_values("consent_event", event.model_dump())),
        (_projection(session.get_bind().dialect.name), template_values("consent_state", state)),
        announce,
        *audit.append_statements(link, actor, f"consent.{status}", str(event.id)),
    ])
    return event


async def record(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, data: ConsentCreate, *,
                 caller: Principal, gpc: bool = False) -> ConsentEvent:
    subject = await subjects.reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise Conflict("The subject is erased; its consents stay withdrawn")
    purpose, policy_version = await catalog.purpose_and_policy(session, data.purpose, data.policy_version)
    if purpose is None:
        raise Unprocessable(f"Unknown purpose {data.purpose!r}; see GET /v1/purposes", loc=["body", "purpose"])
    _check_consent_purpose(purpose, ["body", "purpose"])
    if policy_version is None:
        if data.policy_version is not None:
            raise Unprocessable(f"No privacy notice version {data.policy_version!r}", loc=["body", "policy_version"])
        raise NotFound("No privacy notice is in force yet")
    now = utc_now()
    occurred_at = data.occurred_at or now
    if occurred_at > now + _CLOCK_SKEW:
        raise Unprocessable("A consent cannot be given in the future", loc=["body", "occurred_at"])
    status, method = data.status, ConsentMethod.explicit
    if gpc and data.channel == Channel.web and status == ConsentStatus.granted and purpose.gpc:
        status, method = ConsentStatus.withdrawn, ConsentMethod.gpc
    evidence = data.evidence.model_dump(mode="json") if data.evidence else None
    return await _append(session, keys, settings, subject_id=subject.id, purpose=purpose, status=status,
                         channel=data.channel, method=method, policy_version=policy_version, occurred_at=occurred_at,
                         actor=caller, evidence=evidence)


async def withdraw(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, purpose_code: str,
                   *, caller: Principal, channel: Channel, method: ConsentMethod = ConsentMethod.explicit
                   ) -> ConsentEvent:
    """One call, as easy as giving: a withdrawal event, now, under the notice in force."""
    subject = await subjects.reach(session, subject_id, caller)
    purpose, policy_version = await catalog.purpose_and_policy(session, purpose_code, None)
    if purpose is None:
        raise catalog.PurposeNotFound(f"No purpose with code {purpose_code!r}")
    _check_consent_purpose(purpose, ["path", "purpose"])
    if policy_version is None:
        raise NotFound("No privacy notice is in force yet")
    return await _append(session, keys, settings, subject_id=subject.id, purpose=purpose,
                         status=ConsentStatus.withdrawn, channel=channel, method=method,
                         policy_version=policy_version, occurred_at=utc_now(), actor=caller)


async def get_event(session: AsyncSession, subject_id: uuid.UUID, event_id: uuid.UUID, *,
                    caller: Principal) -> ConsentEvent:
    subject = await subjects.reach(session, subject_id, caller)
    event = await session.get(ConsentEvent, event_id)
    if event is None or event.subject_id != subject.id:
        raise NotFound("Consent event not found")
    return event


async def current(session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal) -> Sequence[ConsentState]:
    subject = await subjects.reach(session, subject_id, caller)
    rows = await session.execute(select(ConsentState).where(ConsentState.subject_id == subject.id)
                                 .order_by(ConsentState.purpose))
    await audit.record(session, caller, "consent.read", subject_id=subject.id)
    return rows.scalars().all()


async def history(session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal, limit: int,
                  cursor: str | None) -> tuple[Sequence[ConsentEvent], str | None]:
    subject = await subjects.reach(session, subject_id, caller)
    events, next_cursor = await paginate(session, select(ConsentEvent).where(ConsentEvent.subject_id == subject.id),
                                         order=(ConsentEvent.occurred_at, ConsentEvent.id), limit=limit,
                                         cursor=cursor, key_type=uuid.UUID)
    await audit.record(session, caller, "consent.history_read", subject_id=subject.id)
    return events, next_cursor


async def withdraw_all(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, *,
                       actor: Principal, method: ConsentMethod, purposes: set[str] | None = None) -> int:
    """A withdrawal event for every consent purpose whose current state is not already withdrawn (or only
    for `purposes`): what erasure and an upheld marketing objection do. Returns how many."""
    states = (await session.execute(select(ConsentState).where(ConsentState.subject_id == subject_id))).scalars().all()
    open_purposes = {s.purpose for s in states if s.status != ConsentStatus.withdrawn}
    if purposes is not None:
        open_purposes &= purposes
    for code in sorted(open_purposes):
        purpose, policy_version = await catalog.purpose_and_policy(session, code, None)
        if purpose is None or policy_version is None:
            continue
        await _append(session, keys, settings, subject_id=subject_id, purpose=purpose,
                      status=ConsentStatus.withdrawn, channel=Channel.api, method=method,
                      policy_version=policy_version, occurred_at=utc_now(), actor=actor)
    return len(open_purposes)


async def strip_evidence(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Erasure keeps the consent history (what was agreed, when, under which notice: accountability), but not
    the personal data in its evidence (address, browser, the text as shown)."""
    await session.execute(update(ConsentEvent).where(ConsentEvent.subject_id == subject_id).values(
        evidence_ip=None, evidence_user_agent=None, evidence_text_shown=None))


async def states_for(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> dict[tuple[uuid.UUID, str], tuple[str, Any]]:
    """(subject, purpose) → (status, occurred_at) of the current consents of these subjects."""
    if not subject_ids:
        return {}
    rows = await session.execute(select(_STATES.c.subject_id, _STATES.c.purpose, _STATES.c.status,
                                        _STATES.c.occurred_at).where(among(session, _STATES.c.subject_id, subject_ids)))
    return {(subject_id, purpose): (status, occurred_at) for subject_id, purpose, status, occurred_at in rows}
