"""The only writer of audit events. Events carry who, what and when; never the values read or changed."""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditChainHead, AuditEvent
from app.core.context import request_id_var
from app.core.db import InsertTemplate, Write, execute_guarded, upsert, upsert_for
from app.core.pagination import paginate
from app.core.security import Principal
from app.core.time import utc_now

GENESIS = "0" * 64
GLOBAL_CHAIN = "global"


_FIELDS = ("id", "chain", "seq", "at", "actor", "role", "action", "subject_id", "target", "request_id", "prev_hash")


def event_hash(event: AuditEvent | dict[str, Any]) -> str:
    """SHA-256 over the event's fields and its predecessor's hash, in a fixed canonical form."""
    fields = event if isinstance(event, dict) else {name: getattr(event, name) for name in _FIELDS}
    canonical = json.dumps(
        [str(fields["id"]), fields["chain"], fields["seq"], fields["at"].isoformat(), fields["actor"],
         fields["role"], fields["action"], str(fields["subject_id"]) if fields["subject_id"] else None,
         fields["target"], fields["request_id"], fields["prev_hash"]],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_HEADS = AuditChainHead.__table__
_EVENTS = AuditEvent.__table__
_APPEND = InsertTemplate(_EVENTS, "audit_event")


@functools.cache
def _lock_statement(dialect: str) -> Any:
    statement = upsert_for(dialect, _HEADS).values(
        chain=bindparam("chain"), seq=0, hash=GENESIS)
    return statement.on_conflict_do_update(index_elements=[_HEADS.c.chain], set_={"seq": _HEADS.c.seq}).returning(
        _HEADS.c.seq, _HEADS.c.hash)


class _Advance:
    """Moves a chain's head to a new event, only from the head the event links to (a chain without a head
    row is at 0): the guard of every append, so that two writers can never both extend one link."""

    @functools.cache  # noqa: B019 - one instance, for the life of the process
    def statement(self, dialect: str) -> Any:
        statement = upsert_for(dialect, _HEADS).values(
            chain=bindparam("audit_head_chain"), seq=bindparam("audit_head_seq"), hash=bindparam("audit_head_hash"))
        return statement.on_conflict_do_update(
            index_elements=[_HEADS.c.chain], set_={"seq": statement.excluded.seq, "hash": statement.excluded.hash},
            where=_HEADS.c.seq == bindparam("audit_head_from", type_=Integer()),
        ).returning(_HEADS.c.chain)


_ADVANCE = _Advance()


@dataclass(frozen=True)
class ChainLink:
    """The end of a chain: the next event links to it."""

    chain: str
    subject_id: uuid.UUID | None
    seq: int
    hash: str


def chain_of(subject_id: uuid.UUID | None) -> str:
    return str(subject_id) if subject_id else GLOBAL_CHAIN


def head_columns(chain: Any) -> tuple[Any, Any]:
    """The sequence number and hash of a chain's head, as columns for a caller's query (read, not locked)."""
    return (select(_HEADS.c.seq).where(_HEADS.c.chain == chain).scalar_subquery(),
            select(_HEADS.c.hash).where(_HEADS.c.chain == chain).scalar_subquery())


def link_at(subject_id: uuid.UUID | None, seq: int | None, head_hash: str | None) -> ChainLink:
    """The link read by head_columns (a chain not yet started is at 0)."""
    return ChainLink(chain_of(subject_id), subject_id, seq or 0, head_hash or GENESIS)


async def lock_chain(session: AsyncSession, subject_id: uuid.UUID | None) -> ChainLink:
    """The end of the subject's chain, its row locked until the transaction ends; one statement that also
    starts a chain that has none yet. Two writers to one chain queue here, and never fork it."""
    chain = chain_of(subject_id)
    statement = _lock_statement(session.get_bind().dialect.name)
    seq, head_hash = (await session.execute(statement, {"chain": chain})).one()
    return ChainLink(chain, subject_id, seq, head_hash)


def append_after(link: ChainLink, actor: Principal, action: str,
                 target: str | None = None) -> tuple[tuple[_Advance, dict[str, Any]], Write]:
    """The guard that moves the chain's head from `link` to a new event, and the event's insert: for
    core.db.execute_guarded, with the caller's own writes. If another writer extended the chain since
    `link` was read, the guard matches nothing and nothing is written: read the link again and retry."""
    event = {"id": uuid.uuid4(), "chain": link.chain, "seq": link.seq + 1, "at": utc_now(), "actor": actor.sub,
             "role": actor.role, "action": action, "subject_id": link.subject_id, "target": target,
             "request_id": request_id_var.get(), "prev_hash": link.hash}
    event["hash"] = event_hash(event)
    guard = {"audit_head_chain": link.chain, "audit_head_seq": event["seq"], "audit_head_hash": event["hash"],
             "audit_head_from": link.seq}
    return (_ADVANCE, guard), _APPEND(event)


async def record(
    session: AsyncSession, actor: Principal, action: str, *, subject_id: uuid.UUID | None = None,
    target: str | None = None,
) -> None:
    """Append one event to the subject's chain, in the caller's transaction."""
    guard, event = append_after(await lock_chain(session, subject_id), actor, action, target)
    # The chain is locked: the guard cannot fail.
    await execute_guarded(session, guard, [event])


async def record_many(session: AsyncSession, actor: Principal,
                      entries: Sequence[tuple[uuid.UUID | None, str, str | None]]) -> None:
    """Events for many chains in three statements: (subject_id, action, target) each. The chains are locked in
    one sorted upsert, so that concurrent writers always lock in the same order and cannot deadlock."""
    if not entries:
        return
    chain_by_subject = {subject_id: chain_of(subject_id) for subject_id, _, _ in entries}
    chains = sorted(set(chain_by_subject.values()))
    statement = upsert(session, _HEADS).values([{"chain": c, "seq": 0, "hash": GENESIS} for c in chains])
    statement = statement.on_conflict_do_update(index_elements=[_HEADS.c.chain], set_={"seq": _HEADS.c.seq})
    heads = {chain: (seq, head_hash) for chain, seq, head_hash in
             await session.execute(statement.returning(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.hash))}
    events = []
    request_id, at = request_id_var.get(), utc_now()
    for subject_id, action, target in entries:
        chain = chain_by_subject[subject_id]
        seq, prev_hash = heads[chain]
        event = {"id": uuid.uuid4(), "chain": chain, "seq": seq + 1, "at": at, "actor": actor.sub, "role": actor.role,
                 "action": action, "subject_id": subject_id, "target": target, "request_id": request_id,
                 "prev_hash": prev_hash}
        event["hash"] = event_hash(event)
        heads[chain] = (event["seq"], event["hash"])
        events.append(event)
    await session.execute(insert(_EVENTS), events)
    await session.execute(update(_HEADS).where(_HEADS.c.chain == bindparam("head_chain")).values(
        seq=bindparam("head_seq"), hash=bindparam("head_hash")),
        [{"head_chain": c, "head_seq": s, "head_hash": h} for c, (s, h) in heads.items()])


async def record_each(session: AsyncSession, actor: Principal, action: str, subject_ids: Iterable[uuid.UUID]) -> None:
    """One event per subject."""
    await record_many(session, actor, [(subject_id, action, None) for subject_id in sorted(set(subject_ids), key=str)])


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
