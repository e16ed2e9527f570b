"""May we process this subject's data for this purpose? Current state only, one query per batch (the
repository's read model).

Rules: an erased subject, nothing; a restricted subject, only purposes resting on a legal obligation; an
upheld objection, not for that purpose; a consent purpose, by the rule the marketing check uses
(marketing.consent_reasons: only while the latest consent is granted, and not once the subject opted out of
every channel the purpose is sent by); a `legitimate_interest` purpose only with an approved legitimate-
interest assessment, and a high-risk purpose only with a DPIA reference."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal
from app.catalog.schemas import LegalBasis, LiaOutcome
from app.consent import service as consent_service
from app.core.db import transaction
from app.core.time import utc_now
from app.decisions import repository
from app.decisions.schemas import Decision, Reason
from app.marketing import service as marketing
from app.subjects.schemas import SubjectStatus

_ENABLING = {
    LegalBasis.contract: Reason.basis_contract,
    LegalBasis.legal_obligation: Reason.basis_legal_obligation,
    LegalBasis.legitimate_interest: Reason.basis_legitimate_interest,
}


def unassessed(
    legal_basis: str | None, lia_outcome: str | None, high_risk: bool, has_dpia: bool
) -> tuple[Reason, ...]:
    """What the purpose's assessments lack before it may be used: an approved legitimate-interest assessment
    (GDPR Art. 6(1)(f)) for a `legitimate_interest` purpose, a DPIA (Art. 35) for a high-risk one."""
    missing: list[Reason] = []
    if legal_basis == LegalBasis.legitimate_interest and lia_outcome != LiaOutcome.approved:
        missing.append(Reason.lia_missing if lia_outcome is None else Reason.lia_rejected)
    if high_risk and not has_dpia:
        missing.append(Reason.dpia_missing)
    return tuple(missing)


@functools.cache  # pure, over a handful of inputs: a batch shares its answers instead of building a thousand
def decide(
    subject_status: str | None,
    legal_basis: str | None,
    consent: str | None,
    objected: bool,
    missing: tuple[Reason, ...] = (),
    opted_out: bool = False,
) -> Decision:
    """`missing`: what the purpose's assessments lack (unassessed); `opted_out`: the subject opted out of
    every channel the purpose is sent by."""
    if subject_status is None:
        return Decision(allowed=False, legal_basis=legal_basis, reasons=[Reason.unknown_subject])
    if legal_basis is None:
        return Decision(allowed=False, legal_basis=None, reasons=[Reason.unknown_purpose])
    blocking: list[Reason] = []
    if legal_basis == LegalBasis.consent:
        # The marketing check's rule, one function for both: subject, channel opt-out, consent.
        blocking = [
            Reason(r.value) for r in marketing.consent_reasons(subject_status, consent, opted_out=opted_out)
        ]
    elif subject_status == SubjectStatus.erased:
        blocking.append(Reason.subject_erased)
    elif subject_status == SubjectStatus.restricted and legal_basis != LegalBasis.legal_obligation:
        blocking.append(Reason.subject_restricted)
    if objected:
        at = 1 if blocking and blocking[0] in (Reason.subject_erased, Reason.subject_restricted) else 0
        blocking.insert(at, Reason.objection_upheld)
    blocking.extend(missing)
    if blocking:
        return Decision(allowed=False, legal_basis=legal_basis, reasons=blocking)
    enabling = (
        Reason.consent_granted if legal_basis == LegalBasis.consent else _ENABLING[LegalBasis(legal_basis)]
    )
    return Decision(allowed=True, legal_basis=legal_basis, reasons=[enabling])


def _decide(facts: repository.Facts) -> Decision:
    status, basis, consent, objected, lia, high_risk, has_dpia, channels, opted = facts
    missing = unassessed(basis, lia, high_risk, has_dpia)
    return decide(status, basis, consent, objected, missing, marketing.silenced(channels, opted))


async def decide_one(session: AsyncSession, subject_id: uuid.UUID, purpose: str) -> Decision:
    """The single question by primary keys; an unknown subject or purpose costs the batch query, which tells
    the two apart."""
    facts = await repository.facts_of_one(session, subject_id, purpose)
    if facts is None:
        return (await decide_many(session, [(subject_id, purpose)]))[0]
    return (await _renewal(session, [(subject_id, purpose)], [_decide(facts)]))[0]


async def decide_many(session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]]) -> list[Decision]:
    """One query for the whole batch (the repository's read model), then the rule for each question."""
    answers = [_decide(facts) for facts in await repository.facts_of_many(session, asked)]
    return await _renewal(session, asked, answers)


async def _renewal(
    session: AsyncSession, asked: Sequence[tuple[uuid.UUID, str]], answers: list[Decision]
) -> list[Decision]:
    """A consent given under a notice version whose text on the purpose has since changed still allows
    (nothing is withdrawn by a new notice), with `renewal_due` added: ask again (consent.renewal_due_of,
    which reads nothing unless some notice version changed the purpose's text)."""
    granted = [pair for pair, a in zip(asked, answers, strict=True) if a.reasons == [Reason.consent_granted]]
    due = await consent_service.renewal_due_of(session, granted) if granted else set()
    if not due:
        return answers
    return [_RENEWAL_DUE if pair in due else a for pair, a in zip(asked, answers, strict=True)]


_RENEWAL_DUE = Decision(
    allowed=True, legal_basis=LegalBasis.consent, reasons=[Reason.consent_granted, Reason.renewal_due]
)


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
