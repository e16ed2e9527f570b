"""May we process this subject's data for this purpose? Current state only, one query per batch.

Rules: an erased subject, nothing; a restricted subject, only purposes resting on a legal obligation; an
upheld objection, not for that purpose; a consent purpose, only while the latest consent is granted."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, Uuid, and_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog.models import Purpose
from app.catalog.schemas import LegalBasis
from app.consent.models import ConsentState
from app.core.db import insert_or_ignore
from app.core.security import Principal
from app.core.time import utc_now
from app.decisions.models import Objection
from app.decisions.schemas import Decision, Reason
from app.subjects.models import Subject
from app.subjects.schemas import SubjectStatus

_ENABLING = {LegalBasis.contract: Reason.basis_contract, LegalBasis.legal_obligation: Reason.basis_legal_obligation,
             LegalBasis.legitimate_interest: Reason.basis_legitimate_interest}


@functools.cache  # pure, over a handful of inputs: a batch shares its answers instead of building a thousand
def decide(subject_status: str | None, legal_basis: str | None, consent: str | None, objected: bool) -> Decision:
    if subject_status is None:
        return Decision(allowed=False, legal_basis=legal_basis, reasons=[Reason.unknown_subject])
    if legal_basis is None:
        return Decision(allowed=False, legal_basis=None, reasons=[Reason.unknown_purpose])
    blocking = []
    if subject_status == SubjectStatus.erased:
        blocking.append(Reason.subject_erased)
    elif subject_status == SubjectStatus.restricted and legal_basis != LegalBasis.legal_obligation:
        blocking.append(Reason.subject_restricted)
    if objected:
        blocking.append(Reason.objection_upheld)
    if legal_basis == LegalBasis.consent and consent != "granted":
        blocking.append(Reason.no_consent if consent is None else Reason.consent_withdrawn)
    if blocking:
        return Decision(allowed=False, legal_basis=legal_basis, reasons=blocking)
    enabling = Reason.consent_granted if legal_basis == LegalBasis.consent else _ENABLING[LegalBasis(legal_basis)]
    return Decision(allowed=True, legal_basis=legal_basis, reasons=[enabling])


def _questions(dialect: str) -> Any:
    """The batch as a relation (idx, subject_id, purpose) taken from one or two bound parameters, so that the
    statement is the same, and compiled once, whatever the batch size."""
    if dialect == "postgresql":
        return func.unnest(bindparam("subject_ids", type_=postgresql.ARRAY(Uuid)),
                           bindparam("purposes", type_=postgresql.ARRAY(String))).table_valued(
            "subject_id", "purpose", with_ordinality="idx").render_derived(name="question")
    pairs = func.json_each(bindparam("questions", type_=String)).table_valued("key", "value")
    return select(pairs.c.key.label("idx"), func.json_extract(pairs.c.value, "$[0]").label("subject_id"),
                  func.json_extract(pairs.c.value, "$[1]").label("purpose")).subquery("question")


def _parameters(dialect: str, asked: Sequence[tuple[uuid.UUID, str]]) -> dict[str, Any]:
    if dialect == "postgresql":
        return {"subject_ids": [s for s, _ in asked], "purposes": [p for _, p in asked]}
    return {"questions": json.dumps([[s.hex, p] for s, p in asked])}  # SQLite keeps UUIDs as 32 hex digits


# Core tables, not ORM entities: these statements run before every send, and the ORM layer would only add
# overhead to rows of four plain values.
_SUBJECTS, _PURPOSES = Subject.__table__, Purpose.__table__
_STATES, _OBJECTIONS = ConsentState.__table__, Objection.__table__


@functools.cache
def _statement(dialect: str) -> Any:
    q = _questions(dialect)
    return (select(q.c.idx, _SUBJECTS.c.status, _PURPOSES.c.legal_basis, _STATES.c.status,
                   _OBJECTIONS.c.subject_id.is_not(None))
            .select_from(q)
            .outerjoin(_SUBJECTS, _SUBJECTS.c.id == q.c.subject_id)
            .outerjoin(_PURPOSES, _PURPOSES.c.code == q.c.purpose)
            .outerjoin(_STATES, and_(_STATES.c.subject_id == q.c.subject_id, _STATES.c.purpose == q.c.purpose))
            .outerjoin(_OBJECTIONS, and_(_OBJECTIONS.c.subject_id == q.c.subject_id,
                                         _OBJECTIONS.c.purpose == q.c.purpose)))


_ONE = (select(_SUBJECTS.c.status, _PURPOSES.c.legal_basis, _STATES.c.status, _OBJECTIONS.c.subject_id.is_not(None))
        .select_from(_SUBJECTS).join(_PURPOSES, _PURPOSES.c.code == bindparam("purpose"))
        .outerjoin(_STATES, and_(_STATES.c.subject_id == _SUBJECTS.c.id, _STATES.c.purpose == _PURPOSES.c.code))
        .outerjoin(_OBJECTIONS, and_(_OBJECTIONS.c.subject_id == _SUBJECTS.c.id, _OBJECTIONS.c.purpose == _PURPOSES.c.code))
        .where(_SUBJECTS.c.id == bindparam("subject_id")))


async def decide_one(session: AsyncSession, subject_id: uuid.UUID, purpose: str) -> Decision:
    """The single question by primary keys: the cheapest plan there is. Only an unknown subject or purpose
    (no row) costs the batch query, which tells the two apart."""
    row = (await session.execute(_ONE, {"subject_id": subject_id, "purpose": purpose})).first()
    if row is None:
        return (await decide_many(session, [(subject_id, purpose)]))[0]
    subject_status, legal_basis, consent, objected = row
    return decide(subject_status, legal_basis, consent, bool(objected))


async def decide_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Decision]:
    """One query for the whole batch: the questions as a relation, joined to current state by primary keys."""
    dialect = session.get_bind().dialect.name
    rows = await session.execute(_statement(dialect), _parameters(dialect, asked))
    base = 1 if dialect == "postgresql" else 0  # WITH ORDINALITY counts from 1
    decisions: list[Decision | None] = [None] * len(asked)
    for idx, subject_status, legal_basis, consent, objected in rows:
        decisions[int(idx) - base] = decide(subject_status, legal_basis, consent, bool(objected))
    return decisions  # type: ignore[return-value]


async def uphold_objection(session: AsyncSession, subject_id: uuid.UUID, purpose: str, *, actor: Principal) -> None:
    """From now on, decisions for this subject and purpose answer no (GDPR Art. 21)."""
    await insert_or_ignore(session, _OBJECTIONS, {"subject_id": subject_id, "purpose": purpose,
                                                  "upheld_at": utc_now(), "upheld_by": actor.sub})
    await audit.record(session, actor, "objection.upheld", subject_id=subject_id, target=purpose)
