"""The decision's read model (current state only) and the objections it honours: the SQL.

A read model across the subjects', the catalog's and consent's tables, on purpose: a decision runs before
every send, and reads one indexed row of each by primary key (a batch: the questions as a relation joined
to them, one query whatever its size)."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, Uuid, and_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Purpose
from app.consent.models import ConsentState
from app.core import sql
from app.core.sql import Insert
from app.decisions.models import Objection
from app.subjects.models import Subject

# Core tables, not ORM entities: the ORM layer would only add overhead to rows of four plain values.
_SUBJECTS, _PURPOSES = sql.table_of(Subject), sql.table_of(Purpose)
_STATES, _OBJECTIONS = sql.table_of(ConsentState), sql.table_of(Objection)

_UPHOLD = Insert(_OBJECTIONS, "objection", on_conflict=lambda insert: insert.on_conflict_do_nothing())

# (subject status, legal basis, consent status, objected) for one subject and purpose.
Facts = tuple[str | None, str | None, str | None, bool]


def _questions(dialect: str) -> Any:
    """The batch as a relation (idx, subject_id, purpose) taken from one or two bound parameters, so that the
    statement is the same, and compiled once, whatever the batch size."""
    if dialect == "postgresql":
        return (
            func.unnest(
                bindparam("subject_ids", type_=postgresql.ARRAY(Uuid)),
                bindparam("purposes", type_=postgresql.ARRAY(String)),
            )
            .table_valued("subject_id", "purpose", with_ordinality="idx")
            .render_derived(name="question")
        )
    pairs = func.json_each(bindparam("questions", type_=String)).table_valued("key", "value")
    return select(
        pairs.c.key.label("idx"),
        func.json_extract(pairs.c.value, "$[0]").label("subject_id"),
        func.json_extract(pairs.c.value, "$[1]").label("purpose"),
    ).subquery("question")


def _parameters(dialect: str, asked: Sequence[tuple[uuid.UUID, str]]) -> dict[str, Any]:
    if dialect == "postgresql":
        return {"subject_ids": [s for s, _ in asked], "purposes": [p for _, p in asked]}
    return {"questions": json.dumps([[s.hex, p] for s, p in asked])}  # SQLite keeps UUIDs as 32 hex digits


@functools.cache
def _batch(dialect: str) -> Any:
    q = _questions(dialect)
    return (
        select(
            q.c.idx,
            _SUBJECTS.c.status,
            _PURPOSES.c.legal_basis,
            _STATES.c.status,
            _OBJECTIONS.c.subject_id.is_not(None),
        )
        .select_from(q)
        .outerjoin(_SUBJECTS, _SUBJECTS.c.id == q.c.subject_id)
        .outerjoin(_PURPOSES, _PURPOSES.c.code == q.c.purpose)
        .outerjoin(_STATES, and_(_STATES.c.subject_id == q.c.subject_id, _STATES.c.purpose == q.c.purpose))
        .outerjoin(
            _OBJECTIONS,
            and_(_OBJECTIONS.c.subject_id == q.c.subject_id, _OBJECTIONS.c.purpose == q.c.purpose),
        )
    )


_ONE = (
    select(
        _SUBJECTS.c.status.label("subject_status"),
        _PURPOSES.c.legal_basis,
        _STATES.c.status.label("consent"),
        _OBJECTIONS.c.subject_id.is_not(None).label("objected"),
    )
    .select_from(_SUBJECTS)
    .join(_PURPOSES, _PURPOSES.c.code == bindparam("purpose"))
    .outerjoin(_STATES, and_(_STATES.c.subject_id == _SUBJECTS.c.id, _STATES.c.purpose == _PURPOSES.c.code))
    .outerjoin(
        _OBJECTIONS,
        and_(_OBJECTIONS.c.subject_id == _SUBJECTS.c.id, _OBJECTIONS.c.purpose == _PURPOSES.c.code),
    )
    .where(_SUBJECTS.c.id == bindparam("subject_id"))
)


async def facts_of_one(session: AsyncSession, subject_id: uuid.UUID, purpose: str) -> Facts | None:
    """The single question by primary keys: the cheapest plan there is. None when the subject or the purpose
    is unknown (the batch query tells the two apart)."""
    rows = await sql.run(session, _ONE, {"subject_id": subject_id, "purpose": purpose})
    if not rows:
        return None
    row = rows[0]
    return row["subject_status"], row["legal_basis"], row["consent"], bool(row["objected"])


async def facts_of_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Facts]:
    """The facts of each question, in the order asked."""
    dialect = sql.dialect_of(session)
    rows = await session.execute(_batch(dialect), _parameters(dialect, asked))
    base = 1 if dialect == "postgresql" else 0  # WITH ORDINALITY counts from 1
    facts: list[Facts] = [(None, None, None, False)] * len(asked)
    for idx, subject_status, legal_basis, consent, objected in rows:
        facts[int(idx) - base] = (subject_status, legal_basis, consent, bool(objected))
    return facts


async def uphold_objection(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _UPHOLD(values))
