"""Marketing's SQL: channel preferences, contact opt-outs (keyed hashes), and the read model of the check."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.consent.models import ConsentState
from app.core import sql
from app.core.sql import Insert
from app.marketing.models import ContactOptOut, MarketingPreference
from app.marketing.schemas import ChannelState, OptOutChannel
from app.subjects.models import Subject, SubjectContact

_OPT_OUTS, _PREFERENCES = sql.table_of(ContactOptOut), sql.table_of(MarketingPreference)
_CONTACTS, _SUBJECTS, _STATES = (
    sql.table_of(SubjectContact),
    sql.table_of(Subject),
    sql.table_of(ConsentState),
)
MARKETING_PURPOSE = "marketing"
# What each row of the check's read model is about (see _check_statement).
OWNER, OPT_OUT, PREFERENCE = "owner", "opt_out", "preference"

_OPT_OUT = Insert(
    _OPT_OUTS,
    "opt_out",
    on_conflict=lambda insert: insert.on_conflict_do_nothing().returning(_OPT_OUTS.c.id),
)


def _set_preference(insert: Any) -> Any:
    return insert.on_conflict_do_update(
        index_elements=[_PREFERENCES.c.subject_id, _PREFERENCES.c.channel],
        set_={"state": insert.excluded.state, "updated_at": insert.excluded.updated_at},
    )


_PREFERENCE = Insert(_PREFERENCES, "preference", on_conflict=_set_preference)


async def preferences(session: AsyncSession, subject_id: uuid.UUID) -> dict[str, str]:
    rows = await session.execute(
        select(_PREFERENCES.c.channel, _PREFERENCES.c.state).where(_PREFERENCES.c.subject_id == subject_id)
    )
    return dict(rows.all())


async def set_preference(
    session: AsyncSession, subject_id: uuid.UUID, channel: str, state: str, at: datetime
) -> None:
    await sql.write(
        session, _PREFERENCE({"subject_id": subject_id, "channel": channel, "state": state, "updated_at": at})
    )


async def opted_out(session: AsyncSession, hashes: Sequence[str]) -> set[tuple[str, str]]:
    """(contact hash, channel) of every opt-out on these contacts."""
    if not hashes:
        return set()
    rows = await session.execute(
        select(_OPT_OUTS.c.contact_hash, _OPT_OUTS.c.channel).where(_OPT_OUTS.c.contact_hash.in_(hashes))
    )
    return {(contact_hash, channel) for contact_hash, channel in rows}


async def opt_out(
    session: AsyncSession, contact_hash: str, kind: str, channel: str, source: str, at: datetime
) -> bool:
    """Repeating an opt-out changes nothing (the first one's source and time stay): False, then."""
    return bool(
        await sql.write(
            session,
            _OPT_OUT(
                {
                    "id": uuid.uuid4(),
                    "contact_hash": contact_hash,
                    "kind": kind,
                    "channel": channel,
                    "source": source,
                    "created_at": at,
                }
            ),
        )
    )


async def opt_out_of_all(session: AsyncSession, contact_hash: str) -> ContactOptOut | None:
    statement = select(ContactOptOut).where(
        col(ContactOptOut.contact_hash) == contact_hash, col(ContactOptOut.channel) == OptOutChannel.all
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalar_one_or_none()


async def delete_opt_out(session: AsyncSession, opt_out_id: uuid.UUID) -> None:
    await sql.modify(session, delete(_OPT_OUTS).where(_OPT_OUTS.c.id == opt_out_id))


async def delete_opt_outs(session: AsyncSession, hashes: Sequence[str], channel: str) -> None:
    await sql.modify(
        session, delete(_OPT_OUTS).where(_OPT_OUTS.c.contact_hash.in_(hashes), _OPT_OUTS.c.channel == channel)
    )


async def opt_outs_of(session: AsyncSession, hashes: Sequence[str], channel: str) -> Sequence[ContactOptOut]:
    statement = select(ContactOptOut).where(
        col(ContactOptOut.contact_hash).in_(hashes), col(ContactOptOut.channel) == channel
    )
    return (await session.execute(statement)).scalars().all()


async def opt_outs_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> Sequence[ContactOptOut]:
    return (
        (await session.execute(select(ContactOptOut).where(col(ContactOptOut.id).in_(ids)))).scalars().all()
    )


# --- the check before a send: one query per batch, whatever its size
# ------------------------------------------


@functools.cache
def _check_statement(dialect: str) -> Any:
    """Everything the batch check needs about a set of contact hashes, in one query: a read model across the
    subjects', consent's and marketing's tables, on purpose (one round trip instead of five), as (kind,
    contact_hash, subject_id, status, consent, channel, verified) rows: each subject claiming a contact, with
    its marketing consent and whether it verified the contact (`owner`), opt-outs by contact (`opt_out`), and
    the claimants' channel opt-outs (`preference`). Current state only, never history."""
    hashes = functools.partial(sql.among, dialect, name="hashes")
    owners = (
        select(
            literal(OWNER).label("kind"),
            _CONTACTS.c.contact_hash,
            _SUBJECTS.c.id.label("subject_id"),
            _SUBJECTS.c.status,
            _STATES.c.status.label("consent"),
            null().label("channel"),
            _CONTACTS.c.verified_at.is_not(None).label("verified"),
        )
        .join(_SUBJECTS, _SUBJECTS.c.id == _CONTACTS.c.subject_id)
        .outerjoin(
            _STATES, and_(_STATES.c.subject_id == _SUBJECTS.c.id, _STATES.c.purpose == MARKETING_PURPOSE)
        )
        .where(hashes(_CONTACTS.c.contact_hash))
    )
    opt_outs = select(
        literal(OPT_OUT), _OPT_OUTS.c.contact_hash, null(), null(), null(), _OPT_OUTS.c.channel, null()
    ).where(hashes(_OPT_OUTS.c.contact_hash))
    preferences = select(
        literal(PREFERENCE),
        null(),
        _PREFERENCES.c.subject_id,
        null(),
        null(),
        _PREFERENCES.c.channel,
        null(),
    ).where(
        _PREFERENCES.c.state == ChannelState.opted_out,
        _PREFERENCES.c.subject_id.in_(select(_CONTACTS.c.subject_id).where(hashes(_CONTACTS.c.contact_hash))),
    )
    return union_all(owners, opt_outs, preferences)


async def check_facts(session: AsyncSession, hashes: set[str]) -> Any:
    """The rows of the check's read model (see _check_statement) for these contact hashes."""
    return await session.execute(_check_statement(sql.dialect_of(session)), {"hashes": list(hashes)})


# --- the subjects' channel opt-outs: what decisions and unsubscribes read
# ------------------------------------------------------------------------------------------------------------

# Which kind of contact reaches a person on each channel (post has none we hash).
_REACHED_BY = {"email": "email", "sms": "phone", "phone": "phone", "post": None}
CHANNELS = tuple(_REACHED_BY)


def channel_opted_out(subject_id: Any, channel: str) -> Any:
    """SQL, true when the subject is opted out of the channel as GET .../marketing shows it: by its own
    choice, or by an opt-out (of the channel or `all`) on a contact it verified that reaches it. The one
    definition, for the subjects' opted-out channels below and for the decisions' read model, which
    correlates it with the subject it asks about."""
    own = exists().where(
        _PREFERENCES.c.subject_id == subject_id,
        _PREFERENCES.c.channel == channel,
        _PREFERENCES.c.state == ChannelState.opted_out,
    )
    kind = _REACHED_BY[channel]
    if kind is None:
        return own
    on_contact = exists().where(
        _CONTACTS.c.subject_id == subject_id,
        _CONTACTS.c.kind == kind,
        _CONTACTS.c.verified_at.is_not(None),
        _OPT_OUTS.c.contact_hash == _CONTACTS.c.contact_hash,
        # Not IN (...): the decisions' single question is a prebuilt statement, which takes no expanding IN.
        or_(_OPT_OUTS.c.channel == channel, _OPT_OUTS.c.channel == OptOutChannel.all.value),
    )
    return or_(own, on_contact)


@functools.cache
def _opted_statement(dialect: str) -> Any:
    """Per subject, whether it is opted out of each channel (channel_opted_out), one query for a batch."""
    return select(_SUBJECTS.c.id, *(channel_opted_out(_SUBJECTS.c.id, c).label(c) for c in CHANNELS)).where(
        sql.among(dialect, _SUBJECTS.c.id, name="subject_ids")
    )


async def opted_channels(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    """Each subject's opted-out channels."""
    rows = await session.execute(
        _opted_statement(sql.dialect_of(session)), {"subject_ids": list(subject_ids)}
    )
    return {row[0]: {c for c, out in zip(CHANNELS, row[1:], strict=True) if out} for row in rows}
