"""Consent: append-only evidence, the current state as its projection, and a signed receipt for each event.

A consent event (a grant or a withdrawal, recorded or withdrawn alike) is written in one round trip after
one read: the read gives the subject's status and the head of its audit chain (and the catalog's version,
for the worker's cached copy of purposes and notices); the write puts the event, its projection, its
announcement and its audit event in one statement, guarded by the audit chain (audit.append). If another
writer moved the chain meanwhile, nothing was written, and all is read and decided again."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal
from app.catalog import service as catalog
from app.catalog.schemas import LegalBasis
from app.consent import repository
from app.consent.models import ConsentEvent, ConsentState
from app.consent.schemas import Channel, ConsentCreate, ConsentMethod, ConsentStatus
from app.core.config import Settings
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from app.core.mail import Mail
from app.core.ratelimit import parse_rate
from app.core.time import rfc3339, utc_now
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

# A device clock a little ahead of ours is not a consent from the future.
_CLOCK_SKEW = timedelta(minutes=5)


class NotAConsentPurpose(Unprocessable):
    title = "Not a consent purpose"


def _check_consent_purpose(purpose: catalog.Purpose, loc: list[str | int]) -> None:
    if purpose.legal_basis != LegalBasis.consent:
        raise NotAConsentPurpose(
            f"Purpose {purpose.code!r} rests on {purpose.legal_basis}, not on consent", loc=loc
        )


def receipt_envelope(
    settings: Settings,
    *,
    receipt_id: str,
    principal_id: str,
    recorded_at: datetime,
    occurred_at: datetime,
    collection_method: str,
    policy_version: str,
    language: str,
) -> dict[str, Any]:
    """What every receipt says, a subject's or a visitor's: a Kantara Consent Receipt v1.1 / ISO/IEC TS 27560
    record, as JWT claims, without its services."""
    return {
        "iss": settings.jwt_issuer,
        "sub": principal_id,
        "iat": int(recorded_at.timestamp()),
        "jti": receipt_id,
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "SE",
        "consentTimestamp": int(occurred_at.timestamp()),
        "collectionMethod": collection_method,
        "consentReceiptID": receipt_id,
        "language": language,
        "piiPrincipalId": principal_id,
        "piiControllers": [
            {
                "piiController": settings.controller_name,
                "contact": "Dataskydd",
                "email": settings.controller_email,
                "url": settings.controller_website,
            }
        ],
        "policyUrl": f"{settings.public_base_url}/v1/policies/{policy_version}",
        "policyVersion": policy_version,
        "sensitive": False,
        "spiCat": [],
    }


def receipt_purpose(purpose: catalog.Purpose, language: str) -> dict[str, Any]:
    """One purpose as a receipt's services list it."""
    return {
        "purpose": purpose.description.get(language, ""),
        "purposeCode": purpose.code,
        "purposeCategory": [purpose.code],
        "legalBasis": purpose.legal_basis,
        "consentType": "EXPLICIT",
        "piiCategory": purpose.categories,
        "primaryPurpose": False,
        "termination": purpose.retention.get("description", {}).get(language, ""),
        # The recipients the catalog declares for the purpose (Kantara CR v1.1: the flag and the names).
        "thirdPartyDisclosure": bool(purpose.recipients),
        **({"thirdPartyName": ", ".join(purpose.recipients)} if purpose.recipients else {}),
    }


# A subject's receipt is written in the notice's first language; every text in it is in that language.
RECEIPT_LANGUAGE = "sv"


def receipt_claims(event: Mapping[str, Any], purpose: catalog.Purpose, settings: Settings) -> dict[str, Any]:
    """A subject's consent event as receipt claims."""
    return {
        **receipt_envelope(
            settings,
            receipt_id=str(event["id"]),
            principal_id=str(event["subject_id"]),
            recorded_at=event["recorded_at"],
            occurred_at=event["occurred_at"],
            collection_method=f"{event['channel']} ({event['method']})",
            policy_version=event["policy_version"],
            language=RECEIPT_LANGUAGE,
        ),
        "services": [
            {
                "service": purpose.name.get(RECEIPT_LANGUAGE, purpose.code),
                "purposes": [receipt_purpose(purpose, RECEIPT_LANGUAGE)],
            }
        ],
        "consentStatus": event["status"],
        "consentMethod": event["method"],
    }


@dataclass(frozen=True)
class _Context:
    """What a consent event is decided on."""

    subject_status: str | None
    snapshot: catalog.Catalog


@dataclass(frozen=True)
class _Event:
    """What a consent event says; the rest (ids, times, receipt) is added when it is written."""

    purpose: catalog.Purpose
    status: ConsentStatus
    channel: Channel
    method: ConsentMethod
    policy_version: str
    occurred_at: datetime
    evidence: dict[str, str | None]


async def _append(
    session: AsyncSession, subject_id: uuid.UUID, actor: Principal, decide: Callable[[_Context], _Event]
) -> dict[str, Any]:
    """Read what the event depends on, `decide` the event (or raise: it may not be written), and write it with
    its projection, its announcement and its audit event, all or nothing, guarded by the subject's audit chain
    (see the module's docstring). Returns the event's columns as written (a plain dict: an ORM instance would
    cost this hot path more than its signature does)."""
    settings, keys = runtime.of(session).settings, runtime.of(session).keys
    chain = audit.chain_of(subject_id)

    async def attempt() -> dict[str, Any] | None:
        facts = await repository.write_facts(session, subject_id, chain)
        decided = decide(
            _Context(facts.subject_status, await catalog.cached(session, version=facts.catalog_version))
        )
        event: dict[str, Any] = {
            "id": uuid.uuid4(),
            "subject_id": subject_id,
            "purpose": decided.purpose.code,
            "status": decided.status,
            "channel": decided.channel,
            "method": decided.method,
            "policy_version": decided.policy_version,
            "occurred_at": decided.occurred_at,
            "recorded_at": utc_now(),
            "recorded_by": actor.sub,
            "evidence_ip": decided.evidence.get("ip"),
            "evidence_user_agent": decided.evidence.get("user_agent"),
            "evidence_text_shown": decided.evidence.get("text_shown"),
            "evidence_visitor_id": decided.evidence.get("visitor_id"),
        }
        event["receipt"] = keys.receipts.sign(receipt_claims(event, decided.purpose, settings))
        state = {
            "subject_id": subject_id,
            "purpose": event["purpose"],
            "status": event["status"],
            "occurred_at": event["occurred_at"],
            "recorded_at": event["recorded_at"],
            "policy_version": event["policy_version"],
            "event_id": event["id"],
        }
        announcement = outbox.announce(
            f"consent.{event['status']}",
            {
                "event_id": str(event["id"]),
                "subject_id": str(subject_id),
                "purpose": event["purpose"],
                "status": event["status"],
                "channel": event["channel"],
                "method": event["method"],
                "occurred_at": rfc3339(event["occurred_at"]),
            },
            subject_id=subject_id,
        )
        link = audit.link_at(subject_id, facts.chain_seq, facts.chain_hash)
        writes = [repository.append_event(event), repository.project(state), announcement]
        written = await audit.append(
            session, link, actor, f"consent.{event['status']}", str(event["id"]), writes
        )
        return event if written else None

    return await audit.until_appended(attempt)


async def record(
    session: AsyncSession, subject_id: uuid.UUID, data: ConsentCreate, *, caller: Principal, gpc: bool = False
) -> dict[str, Any]:
    subjects.check_reach(subject_id, caller)
    evidence = data.evidence.model_dump(mode="json") if data.evidence else {}

    def decide(context: _Context) -> _Event:
        if context.subject_status is None:
            raise subjects.SubjectNotFound("Subject not found")
        if context.subject_status == SubjectStatus.erased:
            raise Conflict("The subject is erased; its consents stay withdrawn")
        purpose = context.snapshot.purpose(data.purpose)
        if purpose is None:
            raise Unprocessable(
                f"Unknown purpose {data.purpose!r}; see GET /v1/purposes", loc=["body", "purpose"]
            )
        _check_consent_purpose(purpose, ["body", "purpose"])
        now = utc_now()
        version = catalog.notice_version(
            context.snapshot, data.policy_version, now, loc=["body", "policy_version"]
        )
        occurred_at = data.occurred_at or now
        if occurred_at > now + _CLOCK_SKEW:
            raise Unprocessable("A consent cannot be given in the future", loc=["body", "occurred_at"])
        status, method = data.status, ConsentMethod.explicit
        if gpc and data.channel == Channel.web and status == ConsentStatus.granted and purpose.gpc:
            status, method = ConsentStatus.withdrawn, ConsentMethod.gpc
        return _Event(purpose, status, data.channel, method, version, occurred_at, evidence)

    return await _append(session, subject_id, caller, decide)


async def record_visitor_choices(
    session: AsyncSession,
    subject_id: uuid.UUID,
    choices: Mapping[str, tuple[bool, ConsentMethod]],
    *,
    visitor_id: str,
    occurred_at: datetime,
    policy_version: str,
    text_shown: str | None,
) -> None:
    """Cookie choices made on a device linked to the subject ({purpose: (granted, method)}), as the subject's
    consent events (channel web, evidence naming the visitor), for each purpose where the subject does not
    already stand there (same status, or a newer event). Nothing for a subject that is gone or erased. In the
    caller's transaction."""
    standing = {s.purpose: s for s in await repository.current(session, subject_id)}
    actor = Principal.system(f"visitor:{visitor_id}")
    evidence = {"visitor_id": visitor_id, "text_shown": text_shown}
    for code, (granted, method) in choices.items():
        status = ConsentStatus.granted if granted else ConsentStatus.withdrawn
        known = standing.get(code)
        if known is not None and (known.status == status or known.occurred_at >= occurred_at):
            continue

        def decide(
            context: _Context,
            code: str = code,
            status: ConsentStatus = status,
            method: ConsentMethod = method,
        ) -> _Event:
            if context.subject_status in (None, SubjectStatus.erased):
                raise _Skip
            purpose = context.snapshot.purpose(code)
            if purpose is None or purpose.legal_basis != LegalBasis.consent:
                raise _Skip
            return _Event(purpose, status, Channel.web, method, policy_version, occurred_at, evidence)

        try:
            await _append(session, subject_id, actor, decide)
        except _Skip:
            continue


class _Skip(Exception):
    """The choice has nothing to carry over to this subject."""


async def withdraw(
    session: AsyncSession,
    subject_id: uuid.UUID,
    purpose_code: str,
    *,
    caller: Principal,
    channel: Channel,
    method: ConsentMethod = ConsentMethod.explicit,
) -> dict[str, Any]:
    """One call, as easy as giving: a withdrawal event, now, under the notice in force."""
    subjects.check_reach(subject_id, caller)
    return await _append(session, subject_id, caller, _withdrawal(purpose_code, channel, method))


def _withdrawal(
    purpose_code: str, channel: Channel, method: ConsentMethod, *, any_basis: bool = False
) -> Callable[[_Context], _Event]:
    """A withdrawal now; `any_basis`: also for a purpose that no longer rests on consent (erasure)."""

    def decide(context: _Context) -> _Event:
        if context.subject_status is None:
            raise subjects.SubjectNotFound("Subject not found")
        purpose = context.snapshot.purpose(purpose_code)
        if purpose is None:
            raise catalog.PurposeNotFound(f"No purpose with code {purpose_code!r}")
        if not any_basis:
            _check_consent_purpose(purpose, ["path", "purpose"])
        now = utc_now()
        return _Event(
            purpose,
            ConsentStatus.withdrawn,
            channel,
            method,
            catalog.notice_version(context.snapshot, None, now, loc=[]),
            now,
            {},
        )

    return decide


async def get_event(
    session: AsyncSession, subject_id: uuid.UUID, event_id: uuid.UUID, *, caller: Principal
) -> ConsentEvent:
    subject = await subjects.reach(session, subject_id, caller)
    event = await repository.get_event(session, event_id)
    if event is None or event.subject_id != subject.id:
        raise NotFound("Consent event not found")
    return event


async def read_event(
    session: AsyncSession, subject_id: uuid.UUID, event_id: uuid.UUID, *, caller: Principal
) -> ConsentEvent:
    """One event with its evidence, for a caller who may read the subject's consents (audited)."""
    event = await get_event(session, subject_id, event_id, caller=caller)
    await audit.record(
        session, caller, "consent.history_read", subject_id=event.subject_id, target=str(event.id)
    )
    return event


# --- a receipt mailed to the subject on request
# ------------------------------------------------------------------------------------------------------------


class NoAddress(Conflict):
    title = "The subject has no address to mail"


class _PerSubject:
    """At most `rate` per subject in fixed windows, in this worker's memory (as core.ratelimit counts per
    client address): a bound on mail sent to one inbox through us, not an exact quota across workers."""

    def __init__(self) -> None:
        self.window: tuple[int, int] = (-1, 0)
        self.counts: dict[uuid.UUID, int] = {}

    def check(self, subject_id: uuid.UUID, rate: str) -> None:
        limit, seconds = parse_rate(rate)
        now = time.monotonic()
        window = (int(now // seconds), seconds)
        if window != self.window:
            self.window, self.counts = window, {}
        count = self.counts.get(subject_id, 0) + 1
        self.counts[subject_id] = count
        if count > limit:
            raise TooManyRequests(
                "Too many receipts mailed to this subject; wait and try again",
                retry_after=max(1, math.ceil((window[0] + 1) * seconds - now)),
            )


_RECEIPT_MAILS = _PerSubject()
_STATUS_WORDS = {"granted": ("lämnat", "given"), "withdrawn": ("återkallat", "withdrawn")}


def _receipt_mail(to: str, event: ConsentEvent, purpose: catalog.Purpose | None, settings: Settings) -> Mail:
    """The receipt in words, in Swedish and English, with the signed receipt itself and where its key is."""
    name = purpose.name if purpose is not None else {"sv": event.purpose, "en": event.purpose}
    status_sv, status_en = _STATUS_WORDS.get(event.status, (event.status, event.status))
    when = rfc3339(event.occurred_at)
    keys = f"{settings.public_base_url}/v1/consent-receipts/jwks.json"
    sv = (
        f"Här är kvittot på ditt samtycke, som du bad om.\n\nÄndamål: {name['sv']}\n"
        f"Samtycket är: {status_sv}\nNär: {when}\nIntegritetspolicy: version {event.policy_version}\n"
        f"Kvittots id: {event.id}"
    )
    en = (
        f"Here is the receipt for your consent, as you asked.\n\nPurpose: {name['en']}\n"
        f"Consent: {status_en}\nWhen: {when}\nPrivacy notice: version {event.policy_version}\n"
        f"Receipt id: {event.id}"
    )
    return Mail(
        to=to,
        subject="Kvitto på ditt samtycke / Your consent receipt",
        body=f"Hej!\n\n{sv}\n\n---\n\nHello,\n\n{en}\n\n---\n\n"
        f"Signerat kvitto / Signed receipt (JWS, ES256; {keys}):\n{event.receipt}\n\n"
        f"{settings.controller_name}, {settings.controller_email}",
    )


async def mail_receipt(
    session: AsyncSession, subject_id: uuid.UUID, event_id: uuid.UUID, *, caller: Principal
) -> Mail:
    """One consent event's receipt, to the subject's registered address (never one the caller names), to send
    after the commit; rate limited per subject, audited."""
    subject = await subjects.reach(session, subject_id, caller)
    event = await repository.get_event(session, event_id)
    if event is None or event.subject_id != subject.id:
        raise NotFound("Consent event not found")
    if subject.status == SubjectStatus.erased or not subject.email:
        raise NoAddress("The subject is erased; there is no address to mail the receipt to")
    settings = runtime.of(session).settings
    _RECEIPT_MAILS.check(subject.id, settings.receipt_mail_rate_limit)
    purpose = (await catalog.cached(session)).purpose(event.purpose)
    await audit.record(session, caller, "consent.receipt_mailed", subject_id=subject.id, target=str(event.id))
    return _receipt_mail(subject.email, event, purpose, settings)


async def current(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal
) -> Sequence[ConsentState]:
    subject = await subjects.reach(session, subject_id, caller)
    states = await repository.current(session, subject.id)
    await audit.record(session, caller, "consent.read", subject_id=subject.id)
    return states


async def renewal_due(session: AsyncSession, states: Sequence[ConsentState]) -> set[str]:
    """The purposes whose granted consent was given under a notice version that says something else about
    them than the version in force (catalog.cache.Catalog.renewal_due): shown as `renewal_due`, to be asked
    again. Nothing is withdrawn by it."""
    snapshot, now = await catalog.cached(session), utc_now()
    return {
        s.purpose
        for s in states
        if s.status == ConsentStatus.granted and snapshot.renewal_due(s.purpose, s.policy_version, now)
    }


async def renewal_due_of(
    session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]
) -> set[tuple[uuid.UUID, str]]:
    """Which of these (subject, purpose) pairs hold a granted consent due for renewal (as `renewal_due`
    above). Reads the database only for purposes whose text some notice version changed, and the catalog as
    the worker holds it (decisions read nothing else)."""
    snapshot, now = await catalog.held(session), utc_now()
    # Asked once per purpose, not once per pair (a batch asks about a few purposes a thousand times).
    changed = {p for p in {p for _, p in asked} if snapshot.renewable(p, now)}
    if not changed:
        return set()
    given = await repository.versions_given(
        session, sorted({s for s, p in asked if p in changed}, key=str), sorted(changed)
    )
    return {pair for pair, version in given.items() if snapshot.renewal_due(pair[1], version, now)}


async def history(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal, limit: int, cursor: str | None
) -> tuple[Sequence[ConsentEvent], str | None]:
    subject = await subjects.reach(session, subject_id, caller)
    events, next_cursor = await repository.history(session, subject.id, limit=limit, cursor=cursor)
    await audit.record(session, caller, "consent.history_read", subject_id=subject.id)
    return events, next_cursor


async def withdraw_all(
    session: AsyncSession,
    subject_id: uuid.UUID,
    *,
    actor: Principal,
    method: ConsentMethod,
    purposes: set[str] | None = None,
    channel: Channel = Channel.api,
) -> int:
    """A withdrawal event for every consent purpose whose current state is not already withdrawn (or only
    for `purposes`): what erasure, an upheld marketing objection and an unsubscribe do. Returns how many."""
    await transaction(session)
    states = await repository.current(session, subject_id)
    open_purposes = {s.purpose for s in states if s.status != ConsentStatus.withdrawn}
    if purposes is not None:
        open_purposes &= purposes
    for code in sorted(open_purposes):
        try:
            await _append(session, subject_id, actor, _withdrawal(code, channel, method, any_basis=True))
        except NotFound:
            # the purpose is gone from the catalog, or no notice is in force: nothing to withdraw under
            continue
    return len(open_purposes)


async def strip_evidence(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Erasure keeps the consent history (what was agreed, when, under which notice: accountability), but not
    the personal data in its evidence (address, browser, the text as shown). In the caller's transaction."""
    await repository.strip_evidence(session, subject_id)


async def states_for(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], tuple[str, Any]]:
    """(subject, purpose) → (status, occurred_at) of the current consents of these subjects."""
    return await repository.states_for(session, subject_ids) if subject_ids else {}
