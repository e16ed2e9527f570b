"""Direct marketing: channel preferences, contact opt-outs (keyed hashes only), and the check before a send.

An opt-out is absolute: it is recorded against every contact of the subject it concerns, as a keyed hash,
so that it holds for the address or number whatever becomes of the subject (erasure included). Only the
subject itself can lift one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.catalog.schemas import Category
from app.consent.schemas import ConsentStatus
from app.core.crypto import Keys
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.time import utc_now
from app.marketing import repository
from app.marketing.models import ContactOptOut
from app.marketing.schemas import (
    ChannelState,
    CheckContact,
    CheckReason,
    CheckResult,
    MarketingChannel,
    OptOutChannel,
    OptOutCreate,
    OptOutSource,
)
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
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


async def _contacts(session: AsyncSession, subject_id: uuid.UUID) -> _Contacts:
    return _Contacts(
        email=await subjects.contact_hashes(session, subject_id, Category.email),
        phone=await subjects.contact_hashes(session, subject_id, Category.phone),
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


async def channels(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal
) -> dict[str, ChannelState]:
    subject = await subjects.reach(session, subject_id, caller)
    states = await _states(session, subject.id, await _contacts(session, subject.id))
    await audit.record(session, caller, "marketing.read", subject_id=subject.id)
    return states


async def _opt_out_hashes(
    session: AsyncSession,
    hashes: Sequence[tuple[str, Category]],
    channel: OptOutChannel,
    source: OptOutSource,
) -> None:
    now = utc_now()
    for contact_hash, kind in hashes:
        await repository.opt_out(session, contact_hash, kind, channel, source, now)


async def _lift(session: AsyncSession, contacts: _Contacts, channel: MarketingChannel) -> None:
    """Remove the opt-outs on the subject's own contacts for one channel (an `all` becomes the others)."""
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
    contacts = await _contacts(session, subject.id)
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
                [(h, kind) for h in contacts.for_channel(channel)],
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
    await _opt_out_hashes(session, hashes, data.channel, source)
    rows = await repository.opt_outs_of(session, [h for h, _ in hashes], data.channel)
    owners = set((await subjects.subjects_by_contact(session, {h for h, _ in hashes})).values())
    for subject_id in sorted(owners, key=str):
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
    return list(rows)


async def get_opt_outs(session: AsyncSession, ids: list[uuid.UUID]) -> list[ContactOptOut]:
    rows = await repository.opt_outs_by_id(session, ids)
    if len(rows) != len(ids):
        raise NotFound("Opt-out not found")
    return list(rows)


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

    owners: dict[str, tuple[uuid.UUID, str, str | None]] = {}
    opted: dict[str, set[str]] = {}
    subject_opted: dict[uuid.UUID, set[str]] = {}
    if hashes:
        for kind, contact_hash, subject_id, status, consent, channel in await repository.check_facts(
            session, hashes
        ):
            if kind == repository.OWNER:
                owners.setdefault(contact_hash, (subject_id, status, consent))
            elif kind == repository.OPT_OUT:
                opted.setdefault(contact_hash, set()).add(channel)
            else:
                subject_opted.setdefault(subject_id, set()).add(channel)

    return [
        _answer(contact.channel.value, known, owners, opted, subject_opted)
        for contact, known in zip(contacts, asked, strict=True)
    ]


def _answer(
    channel: str,
    known: tuple[str, ...],
    owners: dict[str, tuple[uuid.UUID, str, str | None]],
    opted: dict[str, set[str]],
    subject_opted: dict[uuid.UUID, set[str]],
) -> CheckResult:
    """The rule for one contact, from what the query found for its hashes."""
    if not known:
        return _ANSWERS[CheckReason.invalid_contact]
    owner = None
    for contact_hash in known:
        channels = opted.get(contact_hash)
        if channels is not None and (channel in channels or _EVERY_CHANNEL in channels):
            return _ANSWERS[CheckReason.opted_out]
        if owner is None:
            owner = owners.get(contact_hash)
    if owner is None:
        return _ANSWERS[CheckReason.not_a_subject]
    subject_id, status, consent = owner
    if channel in subject_opted.get(subject_id, ()):
        return _ANSWERS[CheckReason.opted_out]
    if status == SubjectStatus.erased:
        return _ANSWERS[CheckReason.subject_erased]
    if status == SubjectStatus.restricted:
        return _ANSWERS[CheckReason.subject_restricted]
    if consent is None:
        return _ANSWERS[CheckReason.no_consent]
    return _ANSWERS[
        CheckReason.consent_granted if consent == ConsentStatus.granted else CheckReason.consent_withdrawn
    ]


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
    contact_hash = verify_unsubscribe_token(runtime.of(session).keys, token)
    await transaction(session)
    await _opt_out_hashes(
        session, [(contact_hash, Category.email)], OptOutChannel.email, OptOutSource.unsubscribe_link
    )
    owners = set((await subjects.subjects_by_contact(session, {contact_hash})).values())
    actor = Principal.system("unsubscribe-link")
    # No owner known: the opt-out is still announced, for no subject.
    announced_for: list[uuid.UUID | None] = [*sorted(owners, key=str)] or [None]
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
    contacts = await _contacts(session, subject_id)
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
