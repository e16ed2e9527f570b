"""Direct marketing: channel preferences, contact opt-outs (keyed hashes only), and the check before a send.

An opt-out is absolute: it is recorded against every contact of the subject it concerns, as a keyed hash,
so that it holds for the address or number whatever becomes of the subject (erasure included). Only the
subject itself can lift one, and only on the contacts it verified: anyone can type an address into their own
register, so a contact is a subject's own for marketing only once it is verified, by a code sent to it, by the
login code, or by staff with a reason. Restricting (opting out) reaches every contact the subject claims;
lifting, showing and the check's ownership reach only the verified ones (docs/security.md, "Marketing
contacts and opt-outs")."""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth import service as auth
from app.auth.principals import Principal, Role
from app.catalog import service as catalog
from app.catalog.schemas import Category, LegalBasis
from app.consent import service as consent
from app.consent.schemas import Channel, ConsentMethod, ConsentStatus
from app.core.crypto import Keys
from app.core.db import transaction
from app.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.time import utc_now
from app.marketing import repository
from app.marketing.models import ContactOptOut
from app.marketing.schemas import (
    ChannelState,
    CheckContact,
    CheckReason,
    CheckResult,
    ContactVerify,
    MarketingChannel,
    MarketingContactRead,
    OptOutChannel,
    OptOutCreate,
    OptOutSource,
)
from app.subjects import service as subjects
from app.subjects.schemas import ContactProof, SubjectStatus
from app.webhooks import service as outbox
from app.webhooks.schemas import EventType

MARKETING_PURPOSE = repository.MARKETING_PURPOSE
# Which kind of contact reaches a person on each channel (post has no contact we hash).
CONTACT_KIND = {
    MarketingChannel.email: Category.email,
    MarketingChannel.sms: Category.phone,
    MarketingChannel.phone: Category.phone,
    MarketingChannel.post: None,
}


class OptOutLocked(Conflict):
    title = "Only the subject can lift an opt-out"


@dataclass(frozen=True)
class _Contacts:
    email: list[str]
    phone: list[str]

    def for_channel(self, channel: str) -> list[str]:
        kind = CONTACT_KIND[MarketingChannel(channel)]
        return self.email if kind == Category.email else self.phone if kind == Category.phone else []

    @property
    def all(self) -> list[str]:
        return self.email + self.phone

    def kind_of(self, contact_hash: str) -> Category:
        return Category.email if contact_hash in self.email else Category.phone


async def _contacts(session: AsyncSession, subject_id: uuid.UUID, *, verified_only: bool) -> _Contacts:
    """The subject's contacts: those it verified, or every one it claims (what an opt-out reaches)."""
    return _Contacts(
        email=await subjects.contact_hashes(session, subject_id, Category.email, verified_only=verified_only),
        phone=await subjects.contact_hashes(session, subject_id, Category.phone, verified_only=verified_only),
    )


async def _states(
    session: AsyncSession, subject_id: uuid.UUID, contacts: _Contacts
) -> dict[str, ChannelState]:
    preferences = await repository.preferences(session, subject_id)
    opted = await repository.opted_out(session, contacts.all)
    states = {}
    for channel in MarketingChannel:
        out = preferences.get(channel) == ChannelState.opted_out or any(
            (h, channel.value) in opted or (h, OptOutChannel.all.value) in opted
            for h in contacts.for_channel(channel)
        )
        states[channel.value] = ChannelState.opted_out if out else ChannelState.allowed
    return states


# --- the one rule for sending a consent purpose, and the channel opt-outs it reads
# ------------------------------------------------------------------------------------------------------------


def consent_reasons(
    subject_status: str, consent_status: str | None, *, opted_out: bool
) -> tuple[CheckReason, ...]:
    """THE rule for reaching a subject with a consent purpose (`marketing`, `newsletter`, ...) by a channel,
    shared by the marketing check and decisions: everything that stands in the way, in this order, or nothing
    when it is allowed (`consent_granted`). An erased subject, nothing; a restricted one, nothing resting on
    consent; an opt-out of the channel (for decisions: of every channel the purpose is sent by) wins whatever
    the consent says; otherwise only while the latest consent is granted."""
    reasons: list[CheckReason] = []
    if subject_status == SubjectStatus.erased:
        reasons.append(CheckReason.subject_erased)
    elif subject_status == SubjectStatus.restricted:
        reasons.append(CheckReason.subject_restricted)
    if opted_out:
        reasons.append(CheckReason.opted_out)
    if consent_status != ConsentStatus.granted:
        reasons.append(CheckReason.no_consent if consent_status is None else CheckReason.consent_withdrawn)
    return tuple(reasons)


def silenced(channels: Sequence[str], opted: Set[str]) -> bool:
    """Whether a purpose sent by these channels can reach nobody opted out of `opted` (no channels: never)."""
    return bool(channels) and all(channel in opted for channel in channels)


async def opted_channels(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    """Each subject's opted-out channels, as GET .../marketing shows them: its own choices, and the opt-outs
    (of the channel or `all`) on the contacts it verified. One query for all of them."""
    return await repository.opted_channels(session, subject_ids) if subject_ids else {}


async def _withdraw_silenced(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID], actor: Principal, *, channel: Channel
) -> None:
    """After an opt-out: every consent purpose sent only by channels the subject is now opted out of is
    withdrawn, as a consent event with method `unsubscribe` (a purpose already withdrawn is left alone). In
    the caller's transaction."""
    if not subject_ids:
        return
    snapshot = await catalog.cached(session)
    opted = await opted_channels(session, subject_ids)
    for subject_id in subject_ids:
        codes = {
            p.code
            for p in snapshot.purposes.values()
            if p.legal_basis == LegalBasis.consent and silenced(p.channels, opted.get(subject_id, set()))
        }
        if codes:
            await consent.withdraw_all(
                session,
                subject_id,
                actor=actor,
                method=ConsentMethod.unsubscribe,
                purposes=codes,
                channel=channel,
            )


async def channels(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal
) -> dict[str, ChannelState]:
    subject = await subjects.reach(session, subject_id, caller)
    # Only verified contacts: an opt-out on an address the subject merely typed in is somebody else's.
    states = await _states(session, subject.id, await _contacts(session, subject.id, verified_only=True))
    await audit.record(session, caller, "marketing.read", subject_id=subject.id)
    return states


async def _opt_out_hashes(
    session: AsyncSession,
    hashes: Sequence[tuple[str, Category]],
    channel: OptOutChannel,
    source: OptOutSource,
) -> bool:
    """Opt the contacts out of the channel; whether any of them was not opted out of it yet."""
    now, added = utc_now(), False
    for contact_hash, kind in hashes:
        added = await repository.opt_out(session, contact_hash, kind, channel, source, now) or added
    return added


async def _lift(session: AsyncSession, contacts: _Contacts, channel: MarketingChannel) -> None:
    """Remove the opt-outs on the subject's verified contacts for one channel (an `all` becomes the
    others)."""
    for contact_hash in contacts.all:
        everything = await repository.opt_out_of_all(session, contact_hash)
        if everything is not None:
            for other in MarketingChannel:
                if other != channel:
                    await _opt_out_hashes(
                        session,
                        [(contact_hash, contacts.kind_of(contact_hash))],
                        OptOutChannel(other.value),
                        OptOutSource(everything.source),
                    )
            await repository.delete_opt_out(session, everything.id)
    if contacts.all:
        await repository.delete_opt_outs(session, contacts.all, channel)


async def update_channels(
    session: AsyncSession, subject_id: uuid.UUID, changes: dict[str, ChannelState], *, caller: Principal
) -> dict[str, ChannelState]:
    await transaction(session)
    subject = await subjects.reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise Conflict("The subject is erased; its opt-outs stay as they are")
    # Lifting and showing reach the contacts the subject verified; opting out, every one it claims.
    contacts = await _contacts(session, subject.id, verified_only=True)
    claimed = await _contacts(session, subject.id, verified_only=False)
    before = await _states(session, subject.id, contacts)
    source = OptOutSource.subject if caller.role == Role.subject else OptOutSource.staff
    for channel_name, state in changes.items():
        channel = MarketingChannel(channel_name)
        if state == ChannelState.allowed and before[channel] == ChannelState.opted_out:
            if caller.role != Role.subject:
                raise OptOutLocked(f"The {channel} opt-out stands until the subject itself lifts it")
            await _lift(session, contacts, channel)
        kind = CONTACT_KIND[channel]
        if state == ChannelState.opted_out and kind is not None:
            await _opt_out_hashes(
                session,
                [(h, kind) for h in claimed.for_channel(channel)],
                OptOutChannel(channel.value),
                source,
            )
        await repository.set_preference(session, subject.id, channel, state, utc_now())
        if before[channel] != state:
            await outbox.emit(
                session,
                f"marketing.{state}",
                {"subject_id": str(subject.id), "channel": channel, "source": source},
                subject_id=subject.id,
            )
    await audit.record(session, caller, "marketing.updated", subject_id=subject.id)
    if any(state == ChannelState.opted_out for state in changes.values()):
        await _withdraw_silenced(
            session, [subject.id], caller, channel=Channel.web if caller.role == Role.subject else Channel.api
        )
    return await _states(session, subject.id, contacts)


async def opt_out_contact(
    session: AsyncSession, data: OptOutCreate, *, actor: Principal, source: OptOutSource = OptOutSource.staff
) -> list[ContactOptOut]:
    """An opt-out by contact, for anyone, subject or not. Repeating it changes nothing."""
    contacts = runtime.of(session).keys.contacts
    hashes: list[tuple[str, Category]] = []
    if data.email is not None:
        hashes.append((contacts.email(data.email), Category.email))
    if data.phone is not None:
        phone_hash = contacts.phone(data.phone)
        if phone_hash is None:
            raise Unprocessable("Not a phone number that can be normalized to E.164", loc=["body", "phone"])
        hashes.append((phone_hash, Category.phone))
    await transaction(session)
    added = await _opt_out_hashes(session, hashes, data.channel, source)
    rows = await repository.opt_outs_of(session, [h for h, _ in hashes], data.channel)
    if not added:
        return list(rows)  # a repeat: nothing changed, nothing to announce
    owners = await _owners(session, {h for h, _ in hashes})
    for subject_id in owners:
        await outbox.emit(
            session,
            EventType.marketing_opted_out,
            {"subject_id": str(subject_id), "channel": data.channel, "source": source},
            subject_id=subject_id,
        )
        await audit.record(session, actor, "marketing.contact_opted_out", subject_id=subject_id)
    if not owners:
        await outbox.emit(
            session,
            EventType.marketing_opted_out,
            {"subject_id": None, "channel": data.channel, "source": source},
        )
        await audit.record(session, actor, "marketing.contact_opted_out")
    await _withdraw_silenced(session, owners, actor, channel=Channel.api)
    return list(rows)


async def _owners(session: AsyncSession, hashes: set[str]) -> list[uuid.UUID]:
    """The subjects that verified any of these contacts, in a stable order: whom an opt-out is announced
    for."""
    found = await subjects.verified_owners(session, hashes)
    return sorted({owner for owners in found.values() for owner in owners}, key=str)


async def get_opt_outs(session: AsyncSession, ids: list[uuid.UUID]) -> list[ContactOptOut]:
    rows = await repository.opt_outs_by_id(session, ids)
    if len(rows) != len(ids):
        raise NotFound("Opt-out not found")
    return list(rows)


# --- whose contact it is: verification
# ------------------------------------------------------------------------------

# The login-code machinery's purpose for codes that verify a contact (app.auth.service: one code per address,
# 10 minutes, 5 tries, rate limited per address and per client address).
CONTACT_CODE = "contact"
_CODE_WORDING = (
    "Din kod för att bekräfta att adressen är din hos WeSafe",
    "Your code for confirming that this address is yours at WeSafe",
)


class NotVerifiableByCode(Conflict):
    title = "This contact cannot be verified by a code"


class ContactAlreadyVerified(Conflict):
    title = "The contact is already verified"


class CodeRefused(Unprocessable):
    """Wrong, expired, used up, or issued for another claim: one answer for all. The try counts: the route
    commits before it answers."""

    title = "Code refused"


class StaffReasonOnly(Forbidden):
    title = "Only staff verify a contact by a reason"


def _contact_read(found: subjects.SubjectContact, item_id: uuid.UUID) -> MarketingContactRead:
    """The contact an item holds (the registered address's own row when the item repeats it)."""
    return MarketingContactRead(
        item_id=item_id,
        kind=found.kind,
        verified=found.verified_at is not None,
        verified_at=found.verified_at,
        verified_by=ContactProof(found.verified_by) if found.verified_by else None,
    )


async def contact(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *, caller: Principal
) -> MarketingContactRead:
    """Whether one of the subject's e-mail or phone items is verified as its own."""
    subject, _, found = await subjects.item_contact(session, subject_id, item_id, caller=caller)
    await audit.record(session, caller, "marketing.contact_read", subject_id=subject.id, target=str(item_id))
    return _contact_read(found, item_id)


async def _verifiable_by_code(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, caller: Principal
) -> tuple[uuid.UUID, str, subjects.SubjectContact]:
    subject, item, found = await subjects.item_contact(session, subject_id, item_id, caller=caller)
    if found.kind != Category.email or not item.value:
        raise NotVerifiableByCode(
            "Only e-mail addresses are sent codes; staff verify a phone number with a reason"
        )
    if found.verified_at is not None:
        raise ContactAlreadyVerified("The contact is already verified")
    return subject.id, item.value, found


async def send_contact_code(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *, caller: Principal, ip: str
) -> Mail:
    """A code to the address an e-mail item holds, to send after the commit: who reads it there holds it."""
    await transaction(session)
    owner, address, _ = await _verifiable_by_code(session, subject_id, item_id, caller)
    mail = await auth.request_proof_code(
        session, address, ip=ip, purpose=CONTACT_CODE, subject_id=owner, wording=_CODE_WORDING
    )
    await audit.record(session, caller, "marketing.contact_code_sent", subject_id=owner, target=str(item_id))
    return mail


async def verify_contact(
    session: AsyncSession,
    subject_id: uuid.UUID,
    item_id: uuid.UUID,
    data: ContactVerify,
    *,
    caller: Principal,
    ip: str,
) -> MarketingContactRead:
    """Verify a contact as the subject's own: by the code mailed to it (the subject, or staff it was read out
    to), or by staff with a reason (kept with the contact; the audit trail, which outlives erasure, keeps only
    who and when)."""
    await transaction(session)
    if data.reason is not None:
        if caller.role != Role.staff:
            raise StaffReasonOnly("A subject verifies its contact by the code sent to it")
        subject, _, found = await subjects.item_contact(session, subject_id, item_id, caller=caller)
        owner, contact_hash, proof = subject.id, found.contact_hash, ContactProof.staff
    else:
        assert data.code is not None
        owner, address, found = await _verifiable_by_code(session, subject_id, item_id, caller)
        try:
            code = await auth.verify_proof_code(session, address, data.code, ip=ip, purpose=CONTACT_CODE)
        except auth.LoginRefused:
            raise CodeRefused("The code is wrong or no longer valid; ask for a new one") from None
        if code.subject_id != owner:  # a code sent for another subject's claim to the same address
            raise CodeRefused("The code is wrong or no longer valid; ask for a new one")
        contact_hash, proof = found.contact_hash, ContactProof.code
    await subjects.mark_contact_verified(session, owner, contact_hash, proof, reason=data.reason)
    await audit.record(session, caller, "marketing.contact_verified", subject_id=owner, target=str(item_id))
    return _contact_read((await subjects.item_contact(session, owner, item_id, caller=caller))[2], item_id)


# --- the check before a send: one query per batch, whatever its size
# ------------------------------------------

# The rule runs a thousand times per batch: the opt-out of every channel as the plain string the rows hold
# (an enum member is hashed in Python, a string in C).
_EVERY_CHANNEL = OptOutChannel.all.value
# Every answer is one of these; sharing them spares building a thousand models per batch.
_ANSWERS = {
    reason: CheckResult(allowed=reason == CheckReason.consent_granted, reason=reason)
    for reason in CheckReason
}


async def check(session: AsyncSession, contacts: Sequence[CheckContact]) -> list[CheckResult]:
    """The batch check: one query on current state (the repository's read model), the rule per contact."""
    hasher = runtime.of(session).keys.contacts
    asked: list[tuple[str, ...]] = []  # per contact, the hashes of its e-mail and phone that could be made
    for contact in contacts:
        email_hash = hasher.email(contact.email) if contact.email is not None else None
        phone_hash = hasher.phone(contact.phone) if contact.phone is not None else None
        asked.append(tuple(h for h in (email_hash, phone_hash) if h is not None))
    hashes = {h for known in asked for h in known}

    facts = _Facts()
    if hashes:
        for (
            kind,
            contact_hash,
            subject_id,
            status,
            consent,
            channel,
            verified,
        ) in await repository.check_facts(session, hashes):
            if kind == repository.OWNER:
                if verified:
                    facts.owners.setdefault(contact_hash, []).append(subject_id)
                    facts.owner_state[subject_id] = (status, consent)
                else:
                    facts.claimed.add(contact_hash)
            elif kind == repository.OPT_OUT:
                facts.opted.setdefault(contact_hash, set()).add(channel)
            else:
                facts.subject_opted.setdefault(subject_id, set()).add(channel)

    return [
        _answer(contact.channel.value, known, facts) for contact, known in zip(contacts, asked, strict=True)
    ]


@dataclass
class _Facts:
    """What the check's query found, arranged for the rule."""

    owners: dict[str, list[uuid.UUID]] = field(
        default_factory=dict
    )  # contact → the subjects that verified it
    owner_state: dict[uuid.UUID, tuple[str, str | None]] = field(default_factory=dict)  # status, consent
    claimed: set[str] = field(default_factory=set)  # contacts some subject recorded without verifying
    opted: dict[str, set[str]] = field(default_factory=dict)  # contact → its opt-outs' channels
    subject_opted: dict[uuid.UUID, set[str]] = field(default_factory=dict)  # subject → channels opted out


def _owner_reason(status: str, consent: str | None) -> CheckReason:
    """One owner's answer: the shared rule (consent_reasons), its first obstacle or consent_granted. The
    channel opt-outs were answered before (_answer), for the contact and for every owner."""
    reasons = consent_reasons(status, consent, opted_out=False)
    return reasons[0] if reasons else CheckReason.consent_granted


def _answer(channel: str, known: tuple[str, ...], facts: _Facts) -> CheckResult:
    """The rule for one contact, from what the query found for its hashes:
    1. an opt-out on the contact (the channel, or `all`) → opted_out, whoever holds it;
    2. its owners are the subjects that verified it (recorded without verification: nobody's);
    3. an owner that opted out of the channel → opted_out (an opt-out is absolute);
    4. one answer from every owner's state and consent; owners that answer differently → conflict."""
    if not known:
        return _ANSWERS[CheckReason.invalid_contact]
    owners: set[uuid.UUID] = set()
    for contact_hash in known:
        channels = facts.opted.get(contact_hash)
        if channels is not None and (channel in channels or _EVERY_CHANNEL in channels):
            return _ANSWERS[CheckReason.opted_out]
        owners.update(facts.owners.get(contact_hash, ()))
    if not owners:
        claimed = any(h in facts.claimed for h in known)
        return _ANSWERS[CheckReason.unverified_contact if claimed else CheckReason.not_a_subject]
    if any(channel in facts.subject_opted.get(owner, ()) for owner in owners):
        return _ANSWERS[CheckReason.opted_out]
    reasons = {_owner_reason(*facts.owner_state[owner]) for owner in owners}
    return _ANSWERS[reasons.pop() if len(reasons) == 1 else CheckReason.conflict]


# --- one-click unsubscribe (RFC 8058)
# ------------------------------------------------------------------------


def unsubscribe_token(keys: Keys, email: str) -> str:
    """A link token naming the address only by its keyed hash; it does not expire, as mail lingers."""
    return keys.links.sign({"typ": "unsubscribe", "h": keys.contacts.email(email), "ch": "email"})


def verify_unsubscribe_token(keys: Keys, token: str) -> str:
    """The contact hash the link was made for; 404 for anything we did not sign."""
    claims = keys.links.verify(token)
    if not claims or claims.get("typ") != "unsubscribe" or not isinstance(claims.get("h"), str):
        raise NotFound("This unsubscribe link is not valid")
    return str(claims["h"])


async def unsubscribe(session: AsyncSession, token: str) -> None:
    """Opt the link's address out of e-mail marketing. A replayed link (or an address already opted out of
    e-mail or of everything) changes nothing, and so announces and audits nothing: the answer is the same."""
    contact_hash = verify_unsubscribe_token(runtime.of(session).keys, token)
    await transaction(session)
    already = await repository.opted_out(session, [contact_hash])
    if already & {(contact_hash, OptOutChannel.email.value), (contact_hash, OptOutChannel.all.value)}:
        return
    if not await _opt_out_hashes(
        session, [(contact_hash, Category.email)], OptOutChannel.email, OptOutSource.unsubscribe_link
    ):
        return  # a concurrent replay got there first, and announces it
    owners = await _owners(session, {contact_hash})
    # The consents sent only by e-mail (the newsletter) end with it: withdrawn, method `unsubscribe`.
    actor = Principal.system("unsubscribe-link")
    await _withdraw_silenced(session, owners, actor, channel=Channel.email)
    # No owner known: the opt-out is still announced, for no subject.
    announced_for: list[uuid.UUID | None] = [*owners] or [None]
    for subject_id in announced_for:
        await outbox.emit(
            session,
            EventType.marketing_opted_out,
            {
                "subject_id": str(subject_id) if subject_id else None,
                "channel": OptOutChannel.email,
                "source": OptOutSource.unsubscribe_link,
            },
            subject_id=subject_id,
        )
        await audit.record(session, actor, "marketing.unsubscribed", subject_id=subject_id)


async def opt_out_everywhere(session: AsyncSession, subject_id: uuid.UUID, *, source: OptOutSource) -> None:
    """Every channel, for the subject and for each of its contacts (keyed hashes), for good: what an upheld
    objection to direct marketing and an erasure do. The contact opt-outs outlive the subject."""
    await transaction(session)
    # Every contact the subject claims, verified or not: suppressing too much is the safe side, and only
    # whoever proves an address can lift it.
    contacts = await _contacts(session, subject_id, verified_only=False)
    await _opt_out_hashes(
        session,
        [(h, Category.email) for h in contacts.email] + [(h, Category.phone) for h in contacts.phone],
        OptOutChannel.all,
        source,
    )
    now = utc_now()
    for channel in MarketingChannel:
        await repository.set_preference(session, subject_id, channel, ChannelState.opted_out, now)
    await outbox.emit(
        session,
        EventType.marketing_opted_out,
        {"subject_id": str(subject_id), "channel": OptOutChannel.all, "source": source},
        subject_id=subject_id,
    )
