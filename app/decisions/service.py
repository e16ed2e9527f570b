"""May we process this subject's data for this purpose? Current state only, one query per batch (the
repository's read model).

Rules: an erased subject, nothing; a restricted subject, only purposes resting on a legal obligation; an
upheld objection, not for that purpose; a consent purpose, only while the latest consent is granted."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal
from app.catalog.schemas import LegalBasis
from app.consent.schemas import ConsentStatus
from app.core.db import transaction
from app.core.time import utc_now
from app.decisions import repository
from app.decisions.schemas import Decision, Reason
from app.subjects.schemas import SubjectStatus

_ENABLING = {
    LegalBasis.contract: Reason.basis_contract,
    LegalBasis.legal_obligation: Reason.basis_legal_obligation,
    LegalBasis.legitimate_interest: Reason.basis_legitimate_interest,
}


@functools.cache  # pure, over a handful of inputs: a batch shares its answers instead of building a thousand
def decide(
    subject_status: str | None, legal_basis: str | None, consent: str | None, objected: bool
) -> Decision:
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
    if legal_basis == LegalBasis.consent and consent != ConsentStatus.granted:
        blocking.append(Reason.no_consent if consent is None else Reason.consent_withdrawn)
    if blocking:
        return Decision(allowed=False, legal_basis=legal_basis, reasons=blocking)
    enabling = (
        Reason.consent_granted if legal_basis == LegalBasis.consent else _ENABLING[LegalBasis(legal_basis)]
    )
    return Decision(allowed=True, legal_basis=legal_basis, reasons=[enabling])


async def decide_one(session: AsyncSession, subject_id: uuid.UUID, purpose: str) -> Decision:
    """The single question by primary keys; an unknown subject or purpose costs the batch query, which tells
    the two apart."""
    facts = await repository.facts_of_one(session, subject_id, purpose)
    if facts is None:
        return (await decide_many(session, [(subject_id, purpose)]))[0]
    return decide(*facts)


async def decide_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Decision]:
    """One query for the whole batch (the repository's read model), then the rule for each question."""
    return [decide(*facts) for facts in await repository.facts_of_many(session, asked)]


async def uphold_objection(
    session: AsyncSession, subject_id: uuid.UUID, purpose: str, *, actor: Principal
) -> None:
    """From now on, decisions for this subject and purpose answer no (GDPR Art. 21)."""
    await transaction(session)
    await repository.uphold_objection(
        session,
        {"subject_id": subject_id, "purpose": purpose, "upheld_at": utc_now(), "upheld_by": actor.sub},
    )
    await audit.record(session, actor, "objection.upheld", subject_id=subject_id, target=purpose)
