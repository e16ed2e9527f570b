"""The only writer of audit events. Events carry who, what and when; never the values read or changed."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditChainHead, AuditEvent
from app.core.context import request_id_var
from app.core.db import insert_or_ignore
from app.core.pagination import paginate
from app.core.security import Principal
from app.core.time import utc_now

GENESIS = "0" * 64
GLOBAL_CHAIN = "global"


def event_hash(event: AuditEvent) -> str:
    canonical = json.dumps(
        [str(event.id), event.chain, event.seq, event.at.isoformat(), event.actor, event.role, event.action,
         str(event.subject_id) if event.subject_id else None, event.target, event.request_id, event.prev_hash],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _locked_head(session: AsyncSession, chain: str) -> AuditChainHead:
    query = (select(AuditChainHead).where(AuditChainHead.chain == chain).with_for_update()
             .execution_options(populate_existing=True))
    head = (await session.execute(query)).scalar_one_or_none()
    if head is None:
        await insert_or_ignore(session, AuditChainHead.__table__, {"chain": chain, "seq": 0, "hash": GENESIS})
        head = (await session.execute(query)).scalar_one()
    return head


async def record(
    session: AsyncSession, actor: Principal, action: str, *, subject_id: uuid.UUID | None = None,
    target: str | None = None,
) -> AuditEvent:
    """Append one event to the subject's chain, in the caller's transaction."""
    chain = str(subject_id) if subject_id else GLOBAL_CHAIN
    head = await _locked_head(session, chain)
    event = AuditEvent(
        id=uuid.uuid4(), chain=chain, seq=head.seq + 1, at=utc_now(), actor=actor.sub, role=actor.role,
        action=action, subject_id=subject_id, target=target, request_id=request_id_var.get(), prev_hash=head.hash,
    )
    event.hash = event_hash(event)
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    await session.flush()
    return event


async def record_each(session: AsyncSession, actor: Principal, action: str, subject_ids: Iterable[uuid.UUID]) -> None:
    """One event per subject, chains locked in a fixed order so concurrent writers cannot deadlock."""
    for subject_id in sorted(set(subject_ids), key=str):
        await record(session, actor, action, subject_id=subject_id)


async def list_events(
    session: AsyncSession, *, subject_id: uuid.UUID | None, action: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEvent], str | None]:
    statement = select(AuditEvent)
    if subject_id is not None:
        statement = statement.where(AuditEvent.subject_id == subject_id)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    return await paginate(session, statement, order=(AuditEvent.at, AuditEvent.id), limit=limit, cursor=cursor,
                          key_type=uuid.UUID)


@dataclass(frozen=True)
class ChainBreak:
    event_id: str
    chain: str
    seq: int
    reason: str


async def verify_chains(session: AsyncSession) -> tuple[int, ChainBreak | None]:
    """Recompute every chain; (events checked, the first broken link or None)."""
    heads = {h.chain: h for h in (await session.execute(select(AuditChainHead))).scalars()}
    checked, chain, prev, expected_seq = 0, None, GENESIS, 1
    last: AuditEvent | None = None
    seen: set[str] = set()
    stream = await session.stream_scalars(
        select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq).execution_options(yield_per=1000)
    )
    async for event in stream:
        if event.chain != chain:
            if last is not None and (broken := _head_mismatch(heads, last)):
                return checked, broken
            chain, prev, expected_seq = event.chain, GENESIS, 1
            seen.add(chain)
        if event.seq != expected_seq:
            return checked, ChainBreak(str(event.id), event.chain, event.seq, f"expected sequence {expected_seq}")
        if event.prev_hash != prev:
            return checked, ChainBreak(str(event.id), event.chain, event.seq, "does not link to its predecessor")
        if event_hash(event) != event.hash:
            return checked, ChainBreak(str(event.id), event.chain, event.seq, "content does not match its hash")
        checked, prev, expected_seq, last = checked + 1, event.hash, expected_seq + 1, event
        session.expunge(event)
    if last is not None and (broken := _head_mismatch(heads, last)):
        return checked, broken
    for head in heads.values():
        if head.seq and head.chain not in seen:
            return checked, ChainBreak("-", head.chain, head.seq, "every event of this chain is missing")
    return checked, None


def _head_mismatch(heads: dict[str, AuditChainHead], last: AuditEvent) -> ChainBreak | None:
    head = heads.get(last.chain)
    if head is None or head.seq != last.seq or head.hash != last.hash:
        return ChainBreak(str(last.id), last.chain, last.seq, "the chain's last event is missing or was replaced")
    return None
