"""The audit trail's SQL: events and chain heads. Statements are built once; the append is a guard (the
chain head moves from the link it was read at) for core.sql.write_guarded."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit.models import AuditChainHead, AuditEvent
from app.core import sql
from app.core.db import transaction
from app.core.sql import Insert, Write

_HEADS = sql.table_of(AuditChainHead)
_EVENTS = sql.table_of(AuditEvent)
GENESIS = "0" * 64

_EVENT = Insert(_EVENTS, "audit_event")
_HEAD = select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.chain == bindparam("chain"))


class _Advance:
    """Moves a chain's head to a new event, only from the head the event links to (a chain without a head
    row is at 0): the guard of every append, so that two writers can never both extend one link."""

    @functools.cache  # noqa: B019 - one instance, for the life of the process
    def statement(self, dialect: str) -> Any:
        statement = sql.upsert_for(dialect, _HEADS).values(
            chain=bindparam("audit_head_chain"),
            seq=bindparam("audit_head_seq"),
            hash=bindparam("audit_head_hash"),
        )
        return statement.on_conflict_do_update(
            index_elements=[_HEADS.c.chain],
            set_={"seq": statement.excluded.seq, "hash": statement.excluded.hash},
            where=_HEADS.c.seq == bindparam("audit_head_from", type_=Integer()),
        ).returning(_HEADS.c.chain)


_ADVANCE = _Advance()


def advance(chain: str, from_seq: int, seq: int, head_hash: str) -> Write:
    """The guard: the head moves from `from_seq` to the new event (`seq`, `head_hash`), or nothing does."""
    return Write(
        _ADVANCE,
        {
            "audit_head_chain": chain,
            "audit_head_seq": seq,
            "audit_head_hash": head_hash,
            "audit_head_from": from_seq,
        },
    )


def event(values: dict[str, Any]) -> Write:
    return _EVENT(values)


async def head(session: AsyncSession, chain: str) -> tuple[int, str]:
    """The end of a chain (read, not locked): its sequence number and hash; (0, GENESIS) before its first."""
    rows = await sql.run(session, _HEAD, {"chain": chain})
    return (rows[0]["seq"], rows[0]["hash"]) if rows else (0, GENESIS)


async def lock_heads(session: AsyncSession, chains: Sequence[str]) -> dict[str, tuple[int, str]]:
    """The ends of these chains, their rows locked until the transaction ends (starting chains that have none
    yet), in one statement. Sorted, so that concurrent writers always lock in the same order: no deadlock."""
    statement = sql.upsert_for(sql.dialect_of(session), _HEADS).values(
        [{"chain": c, "seq": 0, "hash": GENESIS} for c in sorted(chains)]
    )
    statement = statement.on_conflict_do_update(index_elements=[_HEADS.c.chain], set_={"seq": _HEADS.c.seq})
    rows = await sql.execute(session, statement.returning(_HEADS.c.chain, _HEADS.c.seq, _HEADS.c.hash))
    return {chain: (seq, head_hash) for chain, seq, head_hash in rows}


async def append_locked(
    session: AsyncSession, events: list[dict[str, Any]], heads: dict[str, tuple[int, str]]
) -> None:
    """Events for chains locked by lock_heads, and their new heads."""
    await sql.execute(session, insert(_EVENTS), events)
    await sql.execute(
        session,
        update(_HEADS)
        .where(_HEADS.c.chain == bindparam("head_chain"))
        .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")),
        [{"head_chain": c, "head_seq": s, "head_hash": h} for c, (s, h) in heads.items()],
    )


async def list_events(
    session: AsyncSession, *, subject_id: uuid.UUID | None, action: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEvent], str | None]:
    statement = select(AuditEvent)
    if subject_id is not None:  # a subject's events are its chain's, found by the (chain, seq) index
        statement = statement.where(col(AuditEvent.chain) == str(subject_id))
    statement = sql.where_given(statement, (AuditEvent.action, action))
    return await sql.paginate(
        session,
        statement,
        order=(AuditEvent.at, AuditEvent.id),
        limit=limit,
        cursor=cursor,
    )


async def snapshot(session: AsyncSession) -> None:
    """Make the rest of the session's reads one snapshot (PostgreSQL: a REPEATABLE READ transaction), so
    that the heads and the events read after them are of one moment, however many writers append meanwhile.
    SQLite's transaction (core.db.transaction) holds the write lock: nothing moves under it."""
    if sql.dialect_of(session) != "postgresql":
        await transaction(session)
        return
    if session.in_transaction():
        await session.commit()  # autocommit: nothing to commit; it hands the connection back
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    session.info["transaction"] = True  # what core.db.transaction marks: later asks for one are this one


async def all_heads(session: AsyncSession) -> dict[str, AuditChainHead]:
    return {h.chain: h for h in (await session.execute(select(AuditChainHead))).scalars()}


async def every_event(session: AsyncSession) -> AsyncIterator[AuditEvent]:
    """Every event, chain by chain in sequence, streamed (a thousand at a time), each detached once seen."""
    stream = await session.stream_scalars(
        select(AuditEvent)
        .order_by(col(AuditEvent.chain), col(AuditEvent.seq))
        .execution_options(yield_per=1000)
    )
    async for audit_event in stream:
        yield audit_event
        session.expunge(audit_event)
