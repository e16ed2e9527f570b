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

from sqlalchemy import String, Uuid, and_, bindparam, case, false, func, null, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Purpose
from app.catalog.schemas import LegalBasis
from app.consent.models import ConsentState
from app.consent.schemas import ConsentStatus
from app.core import sql
from app.core.sql import Insert
from app.decisions.models import Objection
from app.marketing.repository import CHANNELS as OPT_OUT_CHANNELS
from app.marketing.repository import channel_opted_out
from app.subjects.models import Subject

# Core tables, not ORM entities: the ORM layer would only add overhead to rows of four plain values.
_SUBJECTS, _PURPOSES = sql.table_of(Subject), sql.table_of(Purpose)
_STATES, _OBJECTIONS = sql.table_of(ConsentState), sql.table_of(Objection)

_UPHOLD = Insert(_OBJECTIONS, "objection", on_conflict=lambda insert: insert.on_conflict_do_nothing())

# For one subject and purpose: (subject status, legal basis, consent status, objected, then the purpose's
# assessments: LIA outcome, high-risk, has a DPIA reference; the channels it is sent by, and those of them the
# subject is opted out of).
Facts = tuple[
    str | None, str | None, str | None, bool, str | None, bool, bool, tuple[str, ...], frozenset[str]
]
UNKNOWN: Facts = (None, None, None, False, None, False, False, (), frozenset())


def _later_facts(subject_id: Any) -> tuple[Any, ...]:
    """The purpose's columns the rule reads besides its legal basis, and the subject's channel opt-outs
    (marketing's definition, correlated with the subject asked about). The opt-outs matter only to a consent
    that is granted, so they are looked up only then (CASE evaluates its branch only when it applies)."""
    granted = and_(_STATES.c.status == ConsentStatus.granted, _PURPOSES.c.legal_basis == LegalBasis.consent)
    return (
        # An outcome counts only with the assessment it is the outcome of.
        case((_PURPOSES.c.lia_reference.is_not(None), _PURPOSES.c.lia_outcome), else_=null()).label(
            "lia_outcome"
        ),
        _PURPOSES.c.high_risk,
        _PURPOSES.c.dpia_reference.is_not(None).label("has_dpia"),
        _PURPOSES.c.channels,
        *(
            case((granted, channel_opted_out(subject_id, channel)), else_=false()).label(f"opted_{channel}")
            for channel in OPT_OUT_CHANNELS
        ),
    )


def _facts(
    status: Any, basis: Any, consent: Any, objected: Any, lia: Any, high: Any, dpia: Any, ch: Any, *opted: Any
) -> Facts:
    out = frozenset(c for c, o in zip(OPT_OUT_CHANNELS, opted, strict=True) if o)
    return (status, basis, consent, bool(objected), lia, bool(high), bool(dpia), tuple(ch or ()), out)


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
            *_later_facts(q.c.subject_id),
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
        *_later_facts(_SUBJECTS.c.id),
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
    return _facts(
        row["subject_status"],
        row["legal_basis"],
        row["consent"],
        row["objected"],
        row["lia_outcome"],
        row["high_risk"],
        row["has_dpia"],
        row["channels"],
        *(row[f"opted_{channel}"] for channel in OPT_OUT_CHANNELS),
    )


async def facts_of_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Facts]:
    """The facts of each question, in the order asked."""
    dialect = sql.dialect_of(session)
    rows = await session.execute(_batch(dialect), _parameters(dialect, asked))
    base = 1 if dialect == "postgresql" else 0  # WITH ORDINALITY counts from 1
    facts: list[Facts] = [UNKNOWN] * len(asked)
    for idx, *found in rows:
        facts[int(idx) - base] = _facts(*found)
    return facts


async def uphold_objection(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _UPHOLD(values))
