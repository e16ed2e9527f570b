"""Direct marketing: channel preferences, contact opt-outs (keyed hashes only), and the check before a send.

An opt-out is absolute: it is recorded against every contact of the subject it concerns, as a keyed hash,
so that it holds for the address or number whatever becomes of the subject (erasure included). Only the
subject itself can lift one."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.consent.models import ConsentState
from app.core.crypto import Keys
from app.core.db import among_named, insert_or_ignore, upsert
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.security import Principal, Role
from app.core.time import utc_now
from app.marketing.models import ContactOptOut, MarketingPreference
from app.marketing.schemas import (
    ChannelState,
    CheckContact,
    CheckReason,
    CheckResult,
    MarketingChannel,
    OptOutChannel,
    OptOutCreate,
)
from app.subjects import service as subjects
from app.subjects.models import Subject, SubjectContact
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

MARKETING_PURPOSE = "marketing"
# Which kind of contact reaches a person on each channel (post has no contact we hash).
CONTACT_KIND = {MarketingChannel.email: "email", MarketingChannel.sms: "phone", MarketingChannel.phone: "phone",
                MarketingChannel.post: None}


class OptOutLocked(Conflict):
    title = "Only the subject can lift an opt-out"


@dataclass(frozen=True)
class _Contacts:
    email: list[str]
    phone: list[str]

    def for_channel(self, channel: str) -> list[str]:
        kind = CONTACT_KIND[MarketingChannel(channel)]
        return self.email if kind == "email" else self.phone if kind == "phone" else []

    @property
    def all(self) -> list[str]:
        return self.email + self.phone


async def _contacts(session: AsyncSession, subject_id: uuid.UUID) -> _Contacts:
    return _Contacts(email=await subjects.contact_hashes(session, subject_id, "email"),
                     phone=await subjects.contact_hashes(session, subject_id, "phone"))


async def _states(session: AsyncSession, subject_id: uuid.UUID, contacts: _Contacts) -> dict[str, ChannelState]:
    preferences = dict((await session.execute(
        select(MarketingPreference.channel, MarketingPreference.state)
        .where(MarketingPreference.subject_id == subject_id))).all())
    opted: set[tuple[str, str]] = set()
    if contacts.all:
        opted = set((await session.execute(select(ContactOptOut.contact_hash, ContactOptOut.channel).where(
            ContactOptOut.contact_hash.in_(contacts.all)))).all())
    states = {}
    for channel in MarketingChannel:
        out = preferences.get(channel) == ChannelState.opted_out or any(
            (h, channel.value) in opted or (h, OptOutChannel.all.value) in opted for h in contacts.for_channel(channel))
        states[channel.value] = ChannelState.opted_out if out else ChannelState.allowed
    return states


async def channels(session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal) -> dict[str, ChannelState]:
    subject = await subjects.reach(session, subject_id, caller)
    states = await _states(session, subject.id, await _contacts(session, subject.id))
    await audit.record(session, caller, "marketing.read", subject_id=subject.id)
    return states


async def _opt_out_hashes(session: AsyncSession, hashes: Sequence[tuple[str, str]], channel: str, source: str) -> None:
    for contact_hash, kind in hashes:
        await insert_or_ignore(session, ContactOptOut.__table__, {
            "id": uuid.uuid4(), "contact_hash": contact_hash, "kind": kind, "channel": channel, "source": source,
            "created_at": utc_now()})


async def _lift(session: AsyncSession, contacts: _Contacts, channel: str) -> None:
    """Remove the opt-outs on the subject's own contacts for one channel; an `all` becomes the other channels."""
    for contact_hash in contacts.all:
        kind = "email" if contact_hash in contacts.email else "phone"
        everything = (await session.execute(select(ContactOptOut).where(
            ContactOptOut.contact_hash == contact_hash, ContactOptOut.channel == OptOutChannel.all))).scalar_one_or_none()
        if everything is not None:
            others = [c.value for c in MarketingChannel if c.value != channel]
            for other in others:
                await _opt_out_hashes(session, [(contact_hash, kind)], other, everything.source)
            await session.delete(everything)
    if contacts.all:
        await session.execute(delete(ContactOptOut).where(ContactOptOut.contact_hash.in_(contacts.all),
                                                          ContactOptOut.channel == channel))


async def update_channels(session: AsyncSession, subject_id: uuid.UUID, changes: dict[str, ChannelState], *,
                          caller: Principal) -> dict[str, ChannelState]:
    subject = await subjects.reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise Conflict("The subject is erased; its opt-outs stay as they are")
    contacts = await _contacts(session, subject.id)
    before = await _states(session, subject.id, contacts)
    source = "subject" if caller.role == Role.subject else "staff"
    for channel, state in changes.items():
        if state == ChannelState.allowed and before[channel] == ChannelState.opted_out:
            if caller.role != Role.subject:
                raise OptOutLocked(f"The {channel} opt-out stands until the subject itself lifts it")
            await _lift(session, contacts, channel)
        if state == ChannelState.opted_out:
            kind = CONTACT_KIND[MarketingChannel(channel)]
            await _opt_out_hashes(session, [(h, kind) for h in contacts.for_channel(channel) if kind], channel, source)
        statement = upsert(session, MarketingPreference).values(subject_id=subject.id, channel=channel, state=state,
                                                               updated_at=utc_now())
        await session.execute(statement.on_conflict_do_update(
            index_elements=[MarketingPreference.subject_id, MarketingPreference.channel],
            set_={"state": statement.excluded.state, "updated_at": statement.excluded.updated_at}))
        if before[channel] != state:
            await outbox.emit(session, f"marketing.{state}", {"subject_id": str(subject.id), "channel": channel,
                                                              "source": source}, subject_id=subject.id)
    await audit.record(session, caller, "marketing.updated", subject_id=subject.id)
    return await _states(session, subject.id, contacts)


async def opt_out_contact(session: AsyncSession, keys: Keys, data: OptOutCreate, *, actor: Principal,
                          source: str = "staff") -> list[ContactOptOut]:
    """An opt-out by contact, for anyone, subject or not. Repeating it changes nothing."""
    hashes: list[tuple[str, str]] = []
    if data.email is not None:
        hashes.append((keys.contacts.email(data.email), "email"))
    if data.phone is not None:
        phone_hash = keys.contacts.phone(data.phone)
        if phone_hash is None:
            raise Unprocessable("Not a phone number that can be normalized to E.164", loc=["body", "phone"])
        hashes.append((phone_hash, "phone"))
    await _opt_out_hashes(session, hashes, data.channel, source)
    rows = (await session.execute(select(ContactOptOut).where(
        ContactOptOut.contact_hash.in_([h for h, _ in hashes]), ContactOptOut.channel == data.channel))).scalars().all()

    owners = set((await subjects.subjects_by_contact(session, {h for h, _ in hashes})).values())
    for subject_id in sorted(owners, key=str):
        await outbox.emit(session, "marketing.opted_out", {"subject_id": str(subject_id), "channel": data.channel,
                                                           "source": source}, subject_id=subject_id)
        await audit.record(session, actor, "marketing.contact_opted_out", subject_id=subject_id)
    if not owners:
        await outbox.emit(session, "marketing.opted_out", {"subject_id": None, "channel": data.channel,
                                                           "source": source})
        await audit.record(session, actor, "marketing.contact_opted_out")
    return list(rows)


async def get_opt_outs(session: AsyncSession, ids: list[uuid.UUID]) -> list[ContactOptOut]:
    rows = (await session.execute(select(ContactOptOut).where(ContactOptOut.id.in_(ids)))).scalars().all()
    if len(rows) != len(ids):
        raise NotFound("Opt-out not found")
    return list(rows)


# --- the check before a send: one query per batch, whatever its size ------------------------------------------

# Every answer is one of these; sharing them spares building a thousand models per batch.
_ANSWERS = {reason: CheckResult(allowed=reason == CheckReason.consent_granted, reason=reason) for reason in CheckReason}
_CONTACTS, _SUBJECTS, _STATES = SubjectContact.__table__, Subject.__table__, ConsentState.__table__
_OPT_OUTS, _PREFERENCES = ContactOptOut.__table__, MarketingPreference.__table__


@functools.cache
def _check_statement(dialect: str) -> Any:
    """Everything the batch check needs about a set of contact hashes, in one query (across domains, on purpose:
    one round trip instead of five), as (kind, contact_hash, subject_id, status, consent, channel) rows: the
    subject owning each contact with its marketing consent (`owner`, the newest subject first), opt-outs by
    contact (`opt_out`), and the owners' channel opt-outs (`preference`). Current state only, never history."""
    hashes = functools.partial(among_named, dialect, name="hashes")
    owners = (select(literal("owner").label("kind"), _CONTACTS.c.contact_hash, _SUBJECTS.c.id.label("subject_id"),
                     _SUBJECTS.c.status, _STATES.c.status.label("consent"), null().label("channel"),
                     _SUBJECTS.c.created_at)
              .join(_SUBJECTS, _SUBJECTS.c.id == _CONTACTS.c.subject_id)
              .outerjoin(_STATES, and_(_STATES.c.subject_id == _SUBJECTS.c.id, _STATES.c.purpose == MARKETING_PURPOSE))
              .where(hashes(_CONTACTS.c.contact_hash)))
    opt_outs = select(literal("opt_out"), _OPT_OUTS.c.contact_hash, null(), null(), null(), _OPT_OUTS.c.channel,
                      null()).where(hashes(_OPT_OUTS.c.contact_hash))
    preferences = (select(literal("preference"), null(), _PREFERENCES.c.subject_id, null(), null(),
                          _PREFERENCES.c.channel, null())
                   .where(_PREFERENCES.c.state == ChannelState.opted_out,
                          _PREFERENCES.c.subject_id.in_(select(_CONTACTS.c.subject_id)
                                                        .where(hashes(_CONTACTS.c.contact_hash)))))
    rows = union_all(owners, opt_outs, preferences).subquery()
    return select(rows.c.kind, rows.c.contact_hash, rows.c.subject_id, rows.c.status, rows.c.consent,
                  rows.c.channel).order_by(rows.c.created_at.desc().nulls_last())


async def check(session: AsyncSession, keys: Keys, contacts: Sequence[CheckContact]) -> list[CheckResult]:
    """The batch check: one query on current state (see _check_statement), then the rule for each contact."""
    asked: list[tuple[str, ...]] = []  # per contact, the hashes of its e-mail and phone that could be made
    for contact in contacts:
        email_hash = keys.contacts.email(contact.email) if contact.email is not None else None
        phone_hash = keys.contacts.phone(contact.phone) if contact.phone is not None else None
        asked.append(tuple(h for h in (email_hash, phone_hash) if h is not None))
    hashes = {h for known in asked for h in known}

    owners: dict[str, tuple[uuid.UUID, str, str | None]] = {}
    opted: dict[str, set[str]] = {}
    subject_opted: dict[uuid.UUID, set[str]] = {}
    if hashes:
        statement = _check_statement(session.get_bind().dialect.name)
        for kind, contact_hash, subject_id, status, consent, channel in await session.execute(
                statement, {"hashes": list(hashes)}):
            if kind == "owner":
                owners.setdefault(contact_hash, (subject_id, status, consent))
            elif kind == "opt_out":
                opted.setdefault(contact_hash, set()).add(channel)
            else:
                subject_opted.setdefault(subject_id, set()).add(channel)

    return [_answer(contact.channel.value, known, owners, opted, subject_opted) for contact, known in
            zip(contacts, asked, strict=True)]


def _answer(channel: str, known: tuple[str, ...], owners: dict[str, tuple[uuid.UUID, str, str | None]],
            opted: dict[str, set[str]], subject_opted: dict[uuid.UUID, set[str]]) -> CheckResult:
    """The rule for one contact, from what the query found for its hashes."""
    if not known:
        return _ANSWERS[CheckReason.invalid_contact]
    owner = None
    for contact_hash in known:
        channels = opted.get(contact_hash)
        if channels is not None and (channel in channels or "all" in channels):
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
    return _ANSWERS[CheckReason.consent_granted if consent == "granted" else CheckReason.consent_withdrawn]


# --- one-click unsubscribe (RFC 8058) ------------------------------------------------------------------------


def unsubscribe_token(keys: Keys, email: str) -> str:
    """A link token naming the address only by its keyed hash; it does not expire, as mail lingers."""
    return keys.links.sign({"typ": "unsubscribe", "h": keys.contacts.email(email), "ch": "email"})


def verify_unsubscribe_token(keys: Keys, token: str) -> str:
    """The contact hash the link was made for; 404 for anything we did not sign."""
    claims = keys.links.verify(token)
    if not claims or claims.get("typ") != "unsubscribe" or not isinstance(claims.get("h"), str):
        raise NotFound("This unsubscribe link is not valid")
    return claims["h"]


async def unsubscribe(session: AsyncSession, keys: Keys, token: str) -> None:
    contact_hash = verify_unsubscribe_token(keys, token)
    await _opt_out_hashes(session, [(contact_hash, "email")], "email", "unsubscribe_link")
    owners = set((await subjects.subjects_by_contact(session, {contact_hash})).values())
    actor = Principal(role="system", sub="unsubscribe-link")
    for subject_id in sorted(owners, key=str) or [None]:
        await outbox.emit(session, "marketing.opted_out", {
            "subject_id": str(subject_id) if subject_id else None, "channel": "email", "source": "unsubscribe_link"},
            subject_id=subject_id)
        await audit.record(session, actor, "marketing.unsubscribed", subject_id=subject_id)



async def opt_out_everywhere(session: AsyncSession, subject_id: uuid.UUID, *, source: str) -> None:
    """Every channel, for the subject and for each of its contacts (keyed hashes), for good: what an upheld
    objection to direct marketing and an erasure do. The contact opt-outs outlive the subject."""
    contacts = await _contacts(session, subject_id)
    await _opt_out_hashes(session, [(h, "email") for h in contacts.email] + [(h, "phone") for h in contacts.phone],
                          OptOutChannel.all, source)
    for channel in MarketingChannel:
        statement = upsert(session, MarketingPreference).values(subject_id=subject_id, channel=channel,
                                                               state=ChannelState.opted_out, updated_at=utc_now())
        await session.execute(statement.on_conflict_do_update(
            index_elements=[MarketingPreference.subject_id, MarketingPreference.channel],
            set_={"state": statement.excluded.state, "updated_at": statement.excluded.updated_at}))
    await outbox.emit(session, "marketing.opted_out", {"subject_id": str(subject_id), "channel": "all",
                                                       "source": source}, subject_id=subject_id)
