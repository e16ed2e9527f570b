"""The only writer of audit events. Events carry who, what and when; never the values read or changed.

Each subject has its own hash chain (events about no subject go to the `global` one), so that writers for
different subjects never wait on each other. An event is appended by compare-and-set: the chain's head is
read, the event linked to it and written together with whatever it records, guarded by the head still
being where it was read (core.sql.write_guarded). If another writer got there first, nothing is written,
and the head is read again. A hot path reads the head in its own query (`link_at`) and calls `append`;
everything else calls `record`. Batches (`record_many`) lock their chains instead: one statement for
many chains, where retrying one chain at a time would cost a round trip each.

Each link is an HMAC-SHA256 under the audit key (PRIVACY_AUDIT_KEYS, never in the database), whose id the
event keeps: someone who can write the database but lacks the key cannot forge or re-link an event. Signed
checkpoints of every head, kept outside the database (checkpoints.py), are the registry of chains: a chain
deleted with its head, or cut short and its head moved back, is noticed against the last checkpoint.
Events written before the chain was keyed have no key id and a plain SHA-256 (legacy_hash)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.checkpoints import CheckpointLog, LogState
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


def _canonical(fields: dict[str, Any]) -> list[Any]:
    return [
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
    ]


def _fields(event: AuditEvent | dict[str, Any]) -> dict[str, Any]:
    return event if isinstance(event, dict) else {name: getattr(event, name) for name in _FIELDS}


def legacy_hash(event: AuditEvent | dict[str, Any]) -> str:
    """The link of an event written before the chain was keyed: SHA-256 over its fields, no key."""
    canonical = json.dumps(_canonical(_fields(event)), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> hmac.HMAC:
    """The HMAC with the key already absorbed: each event's MAC copies it instead of starting over."""
    return hmac.new(key, digestmod=hashlib.sha256)


def event_mac(event: AuditEvent | dict[str, Any], key_id: str, key: bytes) -> str:
    """HMAC-SHA256, under the audit key `key_id`, over the event's fields, its predecessor's link and the key
    id, in a fixed canonical form."""
    mac = _keyed(key).copy()
    mac.update(json.dumps([*_canonical(_fields(event)), key_id], separators=(",", ":")).encode())
    return mac.hexdigest()


class _Settings(Protocol):
    @property
    def audit_keyring(self) -> dict[str, bytes]: ...

    @property
    def audit_checkpoint_dir(self) -> Path: ...


def _settings(session: AsyncSession) -> _Settings:
    """The settings the session's runtime carries (app.runtime, read without importing it: the audit trail
    depends on no other part of the app)."""
    settings: _Settings = session.info["runtime"].settings
    return settings


def keyring(session: AsyncSession) -> dict[str, bytes]:
    """The audit keys: id → key, the first signs."""
    return _settings(session).audit_keyring


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
    link: ChainLink,
    actor: Actor,
    action: str,
    target: str | None,
    at: Any,
    request_id: str | None,
    keys: dict[str, bytes],
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
    key_id, key = next(iter(keys.items()))
    event["hash"], event["key_id"] = event_mac(event, key_id, key), key_id
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
    event = _event(link, actor, action, target, utc_now(), request_id_var.get(), keyring(session))
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
    request_id, at, keys = request_id_var.get(), utc_now(), keyring(session)
    for subject_id, action, target in entries:
        chain = chain_by_subject[subject_id]
        seq, head_hash = heads[chain]
        event = _event(
            ChainLink(chain, subject_id, seq, head_hash), actor, action, target, at, request_id, keys
        )
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


@dataclass
class Verification:
    """What `verify` found: the events whose links hold, every break (one per chain, the first found), and
    the checkpoint log it checked against."""

    checked: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    # Unkeyed (pre-migration) events accepted with no checkpoint yet to seal them: until one is written,
    # nothing shows whether they were rewritten.
    unsealed: int = 0
    log: LogState = field(default_factory=LogState)

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.log.problems


def checkpoint_log(session: AsyncSession, directory: Path | None = None) -> CheckpointLog:
    settings = _settings(session)
    return CheckpointLog(directory or settings.audit_checkpoint_dir, settings.audit_keyring)


async def checkpoint(session: AsyncSession, directory: Path | None = None) -> dict[str, Any]:
    """Append a signed checkpoint of every chain's head to the log outside the database; refused
    (checkpoints.CheckpointRefused) when a head moved back or a chain went missing since the last one."""
    with checkpoint_log(session, directory).writing() as write:  # heads read under the log's lock
        heads = {
            chain: (head.seq, head.hash)
            for chain, head in (await repository.all_heads(session)).items()
            if head.seq  # a chain locked but never written to has no event to vouch for
        }
        return write(heads, utc_now())


async def verify(session: AsyncSession, directory: Path | None = None) -> Verification:
    """Every chain's links (each event's MAC under its key id, or a legacy SHA-256 where that is still
    allowed), each chain's end against its head row, and every head against the last checkpoint. The log is
    read before the database, so the database is never older than the checkpoint it is held to."""
    log = checkpoint_log(session, directory).read()
    await repository.snapshot(session)  # the heads and the events of one moment, writers or not
    heads = await repository.all_heads(session)
    result = await _verify(repository.every_event(session), heads, keyring(session), log)
    result.log = log
    return result


async def verify_chains(session: AsyncSession) -> tuple[int, ChainBreak | None]:
    """Recompute every chain; (events checked, the first broken link or None). The events are streamed
    through a cursor, which needs a transaction."""
    result = await verify(session)
    return result.checked, (result.breaks[0] if result.breaks else None)


class _Chain:
    """One chain being walked."""

    def __init__(self, chain: str, checkpointed: tuple[int, str] | None, sealed: int | None) -> None:
        self.chain, self.checkpointed, self.sealed = chain, checkpointed, sealed
        self.prev, self.expected_seq, self.keyed, self.broken = GENESIS, 1, False, False
        self.last: AuditEvent | None = None

    def check(self, event: AuditEvent, keys: dict[str, bytes]) -> str | None:
        """Why `event` does not link (None: it does)."""
        if event.seq != self.expected_seq:
            return f"expected sequence {self.expected_seq}"
        if event.prev_hash != self.prev:
            return "does not link to its predecessor"
        if event.key_id is None:
            if self.keyed:
                return "an unkeyed event after keyed ones (forged without the audit key)"
            if self.sealed is not None and event.seq > self.sealed:
                return "an unkeyed event after the first checkpoint sealed the unkeyed ones (forged)"
            if legacy_hash(event) != event.hash:
                return "content does not match its hash"
        else:
            key = keys.get(event.key_id)
            if key is None:
                return f"signed with audit key id {event.key_id!r}, which is not configured"
            if not hmac.compare_digest(event_mac(event, event.key_id, key), event.hash):
                return "content does not match its MAC (altered, or linked without the audit key)"
            self.keyed = True
        if self.checkpointed and event.seq == self.checkpointed[0] and event.hash != self.checkpointed[1]:
            return "differs from the event the last checkpoint recorded here (replaced)"
        return None

    def end(self, heads: dict[str, AuditChainHead], at: str | None) -> ChainBreak | None:
        last = self.last
        if last is None:
            return None
        head = heads.get(self.chain)
        if head is None or head.seq != last.seq or head.hash != last.hash:
            return ChainBreak(
                str(last.id), self.chain, last.seq, "the chain's last event is missing or was replaced"
            )
        if self.checkpointed and last.seq < self.checkpointed[0]:
            return ChainBreak(
                str(last.id),
                self.chain,
                last.seq,
                f"the chain moved back: it ends at sequence {last.seq}, the checkpoint of {at} recorded "
                f"sequence {self.checkpointed[0]} (events deleted and the head moved back)",
            )
        return None


async def _verify(
    events: AsyncIterator[AuditEvent],
    heads: dict[str, AuditChainHead],
    keys: dict[str, bytes],
    log: LogState | None = None,
) -> Verification:
    log = log or LogState()
    result = Verification()
    sealed_all = bool(log.count)  # after a first checkpoint, unkeyed events only up to what it sealed
    current: _Chain | None = None
    seen: set[str] = set()

    def finish(chain: _Chain | None) -> None:
        if chain is not None and not chain.broken and (broken := chain.end(heads, log.last_at)):
            result.breaks.append(broken)

    async for event in events:
        if current is None or event.chain != current.chain:
            finish(current)
            sealed = log.first.get(event.chain, (0, ""))[0] if sealed_all else None
            current = _Chain(event.chain, log.heads.get(event.chain), sealed)
            seen.add(event.chain)
        if current.broken:
            continue
        if reason := current.check(event, keys):
            current.broken = True
            result.breaks.append(ChainBreak(str(event.id), event.chain, event.seq, reason))
            continue
        result.checked += 1
        result.unsealed += event.key_id is None and current.sealed is None
        current.prev, current.expected_seq, current.last = event.hash, event.seq + 1, event
    finish(current)
    for head in heads.values():
        if head.seq and head.chain not in seen:
            result.breaks.append(
                ChainBreak("-", head.chain, head.seq, "every event of this chain is missing")
            )
    reported = {b.chain for b in result.breaks}
    for chain, (seq, _) in sorted(log.heads.items()):
        if chain not in seen and chain not in reported:
            result.breaks.append(
                ChainBreak(
                    "-",
                    chain,
                    seq,
                    f"the chain is missing: the checkpoint of {log.last_at} recorded it at sequence {seq} "
                    "(deleted with its head)",
                )
            )
    return result
