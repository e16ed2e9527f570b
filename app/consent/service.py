"""Consent: append-only evidence, the current state as its projection, and a signed receipt for each event."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog import service as catalog
from app.catalog.models import Purpose
from app.catalog.schemas import LegalBasis
from app.consent.models import ConsentEvent, ConsentState
from app.consent.schemas import Channel, ConsentCreate, ConsentMethod, ConsentStatus
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.db import InsertTemplate, among, execute_guarded, execute_prebuilt
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.pagination import paginate
from app.core.security import Principal
from app.core.time import utc_now
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

_EVENTS = ConsentEvent.__table__
_STATES = ConsentState.__table__
_APPEND = InsertTemplate(_EVENTS, "consent_event")

# A device clock a little ahead of ours is not a consent from the future.
_CLOCK_SKEW = timedelta(minutes=5)


class NotAConsentPurpose(Unprocessable):
    title = "Not a consent purpose"


def _check_consent_purpose(purpose: Purpose, loc: list[str | int]) -> None:
    if purpose.legal_basis != LegalBasis.consent:
        raise NotAConsentPurpose(f"Purpose {purpose.code!r} rests on {purpose.legal_basis}, not on consent", loc=loc)


def receipt_claims(event: Mapping[str, Any], purpose: Purpose, settings: Settings) -> dict[str, Any]:
    """A Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 record of the event, as JWT claims."""
    return {
        "iss": settings.jwt_issuer,
        "sub": str(event["subject_id"]),
        "iat": int(event["recorded_at"].timestamp()),
        "jti": str(event["id"]),
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "SE",
        "consentTimestamp": int(event["occurred_at"].timestamp()),
        "collectionMethod": f"{event['channel']} ({event['method']})",
        "consentReceiptID": str(event["id"]),
        "language": "sv",
        "piiPrincipalId": str(event["subject_id"]),
        "piiControllers": [{"piiController": settings.controller_name, "contact": "Dataskydd",
                            "email": settings.controller_email, "url": settings.controller_website}],
        "policyUrl": f"{settings.public_base_url}/v1/policies/{event['policy_version']}",
        "policyVersion": event["policy_version"],
        "services": [{"service": purpose.name.get("en", purpose.code), "purposes": [{
            "purpose": purpose.description.get("en", ""), "purposeCode": purpose.code,
            "purposeCategory": [purpose.code], "legalBasis": purpose.legal_basis, "consentType": "EXPLICIT",
            "piiCategory": purpose.categories, "primaryPurpose": False,
            "termination": purpose.retention.get("description", {}).get("en", ""), "thirdPartyDisclosure": False,
        }]}],
        "sensitive": False,
        "spiCat": [],
        "consentStatus": event["status"],
        "consentMethod": event["method"],
    }


def _forward_only(statement: Any) -> Any:
    """The projection only ever moves forward: atomic in the database, so that concurrent writers cannot lose
    an update, and an older event arriving late changes the history only."""
    newer = tuple_(_STATES.c.occurred_at, _STATES.c.recorded_at) < tuple_(
        statement.excluded.occurred_at, statement.excluded.recorded_at)
    return statement.on_conflict_do_update(
        index_elements=[_STATES.c.subject_id, _STATES.c.purpose],
        set_={c.name: getattr(statement.excluded, c.name) for c in _STATES.c if c.name not in ("subject_id", "purpose")},
        where=newer)


_PROJECT = InsertTemplate(_STATES, "consent_state", on_conflict=_forward_only)

# Everything a consent write checks, and the subject's audit chain head it links to, in one query.
_CONTEXT = {named: catalog.purpose_and_policy_query(
    named, subjects.status_column(bindparam("subject_id")).label("subject_status"),
    *(column.label(name) for column, name in zip(audit.head_columns(bindparam("chain")), ("chain_seq", "chain_hash"),
                                                 strict=True)),
) for named in (False, True)}

# Writers of one subject at the same time: each try lets at least one of them through.
_ATTEMPTS = 25


class ConcurrentChange(Conflict):
    title = "Concurrent change"


@dataclass(frozen=True)
class _Context:
    subject_status: str | None
    purpose: Purpose | None
    policy_version: str | None
    link: audit.ChainLink


async def _read_context(session: AsyncSession, subject_id: uuid.UUID, purpose_code: str,
                        policy_version: str | None) -> _Context:
    row = (await execute_prebuilt(session, _CONTEXT[policy_version is not None], {
        "subject_id": subject_id, "chain": audit.chain_of(subject_id), "code": purpose_code, "now": utc_now(),
        "version": policy_version}))[0]
    purpose, version = catalog.purpose_and_policy_from(row)
    return _Context(row["subject_status"], purpose, version,
                    audit.link_at(subject_id, row["chain_seq"], row["chain_hash"]))


@dataclass(frozen=True)
class _Event:
    """What a consent event says; the rest (ids, times, receipt) is added when it is written."""

    purpose: Purpose
    status: ConsentStatus
    channel: Channel
    method: ConsentMethod
    policy_version: str
    occurred_at: datetime
    evidence: dict[str, str | None]


async def _append(session: AsyncSession, keys: Keys, settings: Settings, *, subject_id: uuid.UUID, purpose_code: str,
                  policy_version: str | None, actor: Principal, decide: Callable[[_Context], _Event]) -> dict[str, Any]:
    """Read what the event depends on, `decide` the event (or raise: it may not be written), and write it with
    its projection, its announcement and its audit event, in one statement guarded by the subject's audit
    chain: if another writer extended the chain since it was read, nothing is written, and all is read and
    decided again (the subject may have been erased meanwhile). Returns the event's columns as written (a
    plain dict: an ORM instance would cost this hot path more than its signature does)."""
    for _ in range(_ATTEMPTS):
        context = await _read_context(session, subject_id, purpose_code, policy_version)
        decided = decide(context)
        event = {
            "id": uuid.uuid4(), "subject_id": subject_id, "purpose": decided.purpose.code, "status": decided.status,
            "channel": decided.channel, "method": decided.method, "policy_version": decided.policy_version,
            "occurred_at": decided.occurred_at, "recorded_at": utc_now(), "recorded_by": actor.sub,
            "evidence_ip": decided.evidence.get("ip"), "evidence_user_agent": decided.evidence.get("user_agent"),
            "evidence_text_shown": decided.evidence.get("text_shown"),
        }
        event["receipt"] = keys.receipts.sign(receipt_claims(event, decided.purpose, settings))
        state = {"subject_id": subject_id, "purpose": event["purpose"], "status": event["status"],
                 "occurred_at": event["occurred_at"], "recorded_at": event["recorded_at"],
                 "policy_version": event["policy_version"], "event_id": event["id"]}
        announce = outbox.event_statement(f"consent.{event['status']}", {
            "event_id": str(event["id"]), "subject_id": str(subject_id), "purpose": event["purpose"],
            "status": event["status"], "channel": event["channel"], "method": event["method"],
            "occurred_at": event["occurred_at"].isoformat()}, subject_id=subject_id)
        guard, audited = audit.append_after(context.link, actor, f"consent.{event['status']}", str(event["id"]))
        if await execute_guarded(session, guard, [_APPEND(event), _PROJECT(state), announce, audited]):
            return event
    raise ConcurrentChange("The subject's records were changed by other requests at the same time; try again")


async def record(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, data: ConsentCreate, *,
                 caller: Principal, gpc: bool = False) -> dict[str, Any]:
    subjects.check_reach(subject_id, caller)
    evidence = data.evidence.model_dump(mode="json") if data.evidence else {}

    def decide(context: _Context) -> _Event:
        if context.subject_status is None:
            raise subjects.SubjectNotFound("Subject not found")
        if context.subject_status == SubjectStatus.erased:
            raise Conflict("The subject is erased; its consents stay withdrawn")
        purpose = context.purpose
        if purpose is None:
            raise Unprocessable(f"Unknown purpose {data.purpose!r}; see GET /v1/purposes", loc=["body", "purpose"])
        _check_consent_purpose(purpose, ["body", "purpose"])
        if context.policy_version is None:
            if data.policy_version is not None:
                raise Unprocessable(f"No privacy notice version {data.policy_version!r}",
                                    loc=["body", "policy_version"])
            raise NotFound("No privacy notice is in force yet")
        now = utc_now()
        occurred_at = data.occurred_at or now
        if occurred_at > now + _CLOCK_SKEW:
            raise Unprocessable("A consent cannot be given in the future", loc=["body", "occurred_at"])
        status, method = data.status, ConsentMethod.explicit
        if gpc and data.channel == Channel.web and status == ConsentStatus.granted and purpose.gpc:
            status, method = ConsentStatus.withdrawn, ConsentMethod.gpc
        return _Event(purpose, status, data.channel, method, context.policy_version, occurred_at, evidence)

    return await _append(session, keys, settings, subject_id=subject_id, purpose_code=data.purpose,
                         policy_version=data.policy_version, actor=caller, decide=decide)


async def withdraw(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, purpose_code: str,
                   *, caller: Principal, channel: Channel, method: ConsentMethod = ConsentMethod.explicit
                   ) -> dict[str, Any]:
    """One call, as easy as giving: a withdrawal event, now, under the notice in force."""
    subjects.check_reach(subject_id, caller)
    return await _append(session, keys, settings, subject_id=subject_id, purpose_code=purpose_code,
                         policy_version=None, actor=caller, decide=_withdrawal(purpose_code, channel, method))


def _withdrawal(purpose_code: str, channel: Channel, method: ConsentMethod, *,
                any_basis: bool = False) -> Callable[[_Context], _Event]:
    """A withdrawal now; `any_basis`: also for a purpose that no longer rests on consent (erasure)."""
    def decide(context: _Context) -> _Event:
        if context.subject_status is None:
            raise subjects.SubjectNotFound("Subject not found")
        if context.purpose is None:
            raise catalog.PurposeNotFound(f"No purpose with code {purpose_code!r}")
        if not any_basis:
            _check_consent_purpose(context.purpose, ["path", "purpose"])
        if context.policy_version is None:
            raise NotFound("No privacy notice is in force yet")
        return _Event(context.purpose, ConsentStatus.withdrawn, channel, method, context.policy_version, utc_now(), {})
    return decide


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
        try:
            await _append(session, keys, settings, subject_id=subject_id, purpose_code=code, policy_version=None,
                          actor=actor, decide=_withdrawal(code, Channel.api, method, any_basis=True))
        except NotFound:
            continue  # the purpose is gone from the catalog, or no notice is in force: nothing to withdraw under
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
