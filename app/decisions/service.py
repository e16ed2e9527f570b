"""May we process this subject's data for this purpose? Current state only, one query per batch.

Rules: an erased subject, nothing; a restricted subject, only purposes resting on a legal obligation; an
upheld objection, not for that purpose; a consent purpose, only while the latest consent is granted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Integer, String, Uuid, and_, column, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Purpose
from app.catalog.schemas import LegalBasis
from app.consent.models import ConsentState
from app.decisions.models import Objection
from app.decisions.schemas import Decision, Reason
from app.subjects.models import Subject
from app.subjects.schemas import SubjectStatus

_ENABLING = {LegalBasis.contract: Reason.basis_contract, LegalBasis.legal_obligation: Reason.basis_legal_obligation,
             LegalBasis.legitimate_interest: Reason.basis_legitimate_interest}


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


async def decide_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Decision]:
    """One query for the whole batch: the questions as a VALUES list, joined to current state by key."""
    questions = values(column("idx", Integer), column("subject_id", Uuid), column("purpose", String),
                       name="question").data([(i, s, p) for i, (s, p) in enumerate(asked)]).cte("question")
    rows = await session.execute(
        select(questions.c.idx, Subject.status, Purpose.legal_basis, ConsentState.status,
               Objection.subject_id.is_not(None))
        .select_from(questions)
        .outerjoin(Subject, Subject.id == questions.c.subject_id)
        .outerjoin(Purpose, Purpose.code == questions.c.purpose)
        .outerjoin(ConsentState, and_(ConsentState.subject_id == questions.c.subject_id,
                                      ConsentState.purpose == questions.c.purpose))
        .outerjoin(Objection, and_(Objection.subject_id == questions.c.subject_id,
                                   Objection.purpose == questions.c.purpose)))
    decisions: list[Decision | None] = [None] * len(asked)
    for idx, subject_status, legal_basis, consent, objected in rows:
        decisions[idx] = decide(subject_status, legal_basis, consent, bool(objected))
    return decisions  # type: ignore[return-value]
