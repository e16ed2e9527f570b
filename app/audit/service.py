"""The only writer of audit events. Events carry who, what and when; never the values read or changed.

Each subject has its own hash chain (events about no subject go to the `global` one), so that writers for
different subjects never wait on each other. An event is appended by compare-and-set: the chain's head is
read, the event linked to it and written together with whatever it records, guarded by the head still
being where it was read (core.sql.write_guarded). If another writer got there first, nothing is written,
and the head is read again. A hot path reads the head in its own query (`link_at`) and calls `append`;
everything else calls `record`. Batches (`record_many`) lock their chains instead: one statement for
many chains, where retrying one chain at a time would cost a round trip each."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.models import AuditChainHead, AuditEvent
from app.core import sql
from app.core.context import request_id_var
from app.core.db import transaction
from app.core.errors import Conflict
from app.core.sql import Write
from app.core.time import utc_now

T = TypeVar("T")
GENESIS = repository.GENESIS
GLOBAL_CHAIN = "global"
# Writers of one chain at the same time: each try lets at least one of them through.
ATTEMPTS = 25


class Actor(Protocol):
    """Who acted (an auth Principal): audit records its role and name, and imports no other domain."""

    @property
    def role(self) -> str: ...

    @property
    def sub(self) -> str: ...


class ConcurrentChange(Conflict):
    title = "Concurrent change"


_FIELDS = (
    "id",
    "chain",
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "subject_id",
    "target",
    "request_id",
    "prev_hash",
)


def event_hash(event: AuditEvent | dict[str, Any]) -> str:
    """SHA-256 over the event's fields and its predecessor's hash, in a fixed canonical form."""
    fields = event if isinstance(event, dict) else {name: getattr(event, name) for name in _FIELDS}
    canonical = json.dumps(
        [
            str(fields["id"]),
            fields["chain"],
            fields["seq"],
            fields["at"].isoformat(),
            fields["actor"],
            fields["role"],
            fields["action"],
            str(fields["subject_id"]) if fields["subject_id"] else None,
            fields["target"],
            fields["request_id"],
            fields["prev_hash"],
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """The end of a chain: the next event links to it."""

    chain: str
    subject_id: uuid.UUID | None
    seq: int
    hash: str


def chain_of(subject_id: uuid.UUID | None) -> str:
    return str(subject_id) if subject_id else GLOBAL_CHAIN


def link_at(subject_id: uuid.UUID | None, seq: int | None, head_hash: str | None) -> ChainLink:
    """The end of the subject's chain as a caller's own query read it (no head row yet: the chain is at 0)."""
    return ChainLink(chain_of(subject_id), subject_id, seq or 0, head_hash or GENESIS)


async def link_of(session: AsyncSession, subject_id: uuid.UUID | None) -> ChainLink:
    """The end of the subject's chain (None: the global one), read now (not locked)."""
    chain = chain_of(subject_id)
    seq, head_hash = await repository.head(session, chain)
    return ChainLink(chain, subject_id, seq, head_hash)


def _event(
    link: ChainLink, actor: Actor, action: str, target: str | None, at: Any, request_id: str | None
) -> dict[str, Any]:
    event = {
        "id": uuid.uuid4(),
        "chain": link.chain,
        "seq": link.seq + 1,
        "at": at,
        "actor": actor.sub,
        "role": actor.role,
        "action": action,
        "subject_id": link.subject_id,
        "target": target,
        "request_id": request_id,
        "prev_hash": link.hash,
    }
    event["hash"] = event_hash(event)
    return event


async def append(
    session: AsyncSession,
    link: ChainLink,
    actor: Actor,
    action: str,
    target: str | None = None,
    writes: Sequence[Write] = (),
) -> bool:
    """Append an event after `link`, together with `writes` (the change it records), all or nothing. False:
    another writer extended the chain since `link` was read, and nothing was written; read it again."""
    event = _event(link, actor, action, target, utc_now(), request_id_var.get())
    guard = repository.advance(link.chain, link.seq, event["seq"], event["hash"])
    return await sql.write_guarded(session, guard, [*writes, repository.event(event)])


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    subject_id: uuid.UUID | None = None,
    target: str | None = None,
    writes: Sequence[Write] = (),
) -> None:
    """Append one event to the subject's chain (with `writes`, all or nothing), in the caller's session."""

    async def attempt() -> bool | None:
        link = await link_of(session, subject_id)
        return True if await append(session, link, actor, action, target, writes) else None

    await until_appended(attempt)


async def until_appended(attempt: Callable[[], Awaitable[T | None]]) -> T:
    """Run `attempt` (read the chain's head with whatever it decides on, decide, `append`) until its append
    goes through. None from it: another writer moved the chain first, and it reads and decides again."""
    for _ in range(ATTEMPTS):
        done = await attempt()
        if done is not None:
            return done
    raise ConcurrentChange("The subject's records were changed by other requests at the same time; try again")


async def record_many(
    session: AsyncSession, actor: Actor, entries: Sequence[tuple[uuid.UUID | None, str, str | None]]
) -> None:
    """Events for many chains, (subject_id, action, target) each, in three statements: the chains locked
    together, the events, the new heads."""
    if not entries:
        return
    await transaction(session)
    chain_by_subject = {subject_id: chain_of(subject_id) for subject_id, _, _ in entries}
    heads = await repository.lock_heads(session, sorted(set(chain_by_subject.values())))
    events = []
    request_id, at = request_id_var.get(), utc_now()
    for subject_id, action, target in entries:
        chain = chain_by_subject[subject_id]
        seq, head_hash = heads[chain]
        event = _event(ChainLink(chain, subject_id, seq, head_hash), actor, action, target, at, request_id)
        heads[chain] = (event["seq"], event["hash"])
        events.append(event)
    await repository.append_locked(session, events, heads)


async def record_each(
    session: AsyncSession, actor: Actor, action: str, subject_ids: Iterable[uuid.UUID]
) -> None:
    """One event per subject."""
    await record_many(
        session, actor, [(subject_id, action, None) for subject_id in sorted(set(subject_ids), key=str)]
    )


async def list_events(
    session: AsyncSession, *, subject_id: uuid.UUID | None, action: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEvent], str | None]:
    return await repository.list_events(
        session, subject_id=subject_id, action=action, limit=limit, cursor=cursor
    )


@dataclass(frozen=True)
class ChainBreak:
    event_id: str
    chain: str
    seq: int
    reason: str


async def verify_chains(session: AsyncSession) -> tuple[int, ChainBreak | None]:
    """Recompute every chain; (events checked, the first broken link or None). The events are streamed
    through a cursor, which needs a transaction."""
    await transaction(session)
    heads = await repository.all_heads(session)
    return await _verify(repository.every_event(session), heads)


async def _verify(
    events: AsyncIterator[AuditEvent], heads: dict[str, AuditChainHead]
) -> tuple[int, ChainBreak | None]:
    checked, chain, prev, expected_seq = 0, None, GENESIS, 1
    last: AuditEvent | None = None
    seen: set[str] = set()
    async for event in events:
        if event.chain != chain:
            if last is not None and (broken := _head_mismatch(heads, last)):
                return checked, broken
            chain, prev, expected_seq = event.chain, GENESIS, 1
            seen.add(chain)
        if event.seq != expected_seq:
            return checked, ChainBreak(
                str(event.id), event.chain, event.seq, f"expected sequence {expected_seq}"
            )
        if event.prev_hash != prev:
            return checked, ChainBreak(
                str(event.id), event.chain, event.seq, "does not link to its predecessor"
            )
        if event_hash(event) != event.hash:
            return checked, ChainBreak(
                str(event.id), event.chain, event.seq, "content does not match its hash"
            )
        checked, prev, expected_seq, last = checked + 1, event.hash, expected_seq + 1, event
    if last is not None and (broken := _head_mismatch(heads, last)):
        return checked, broken
    for head in heads.values():
        if head.seq and head.chain not in seen:
            return checked, ChainBreak("-", head.chain, head.seq, "every event of this chain is missing")
    return checked, None


def _head_mismatch(heads: dict[str, AuditChainHead], last: AuditEvent) -> ChainBreak | None:
    head = heads.get(last.chain)
    if head is None or head.seq != last.seq or head.hash != last.hash:
        return ChainBreak(
            str(last.id), last.chain, last.seq, "the chain's last event is missing or was replaced"
        )
    return None
