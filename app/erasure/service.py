"""Forgetting a person: the one flow behind both an erasure request (the right to be forgotten, GDPR Art. 17)
and the retention sweep's last step (a subject of whom nothing identifying is left is anonymized).

Both remove what identifies the person everywhere it is kept: the subject's name, addresses and references,
its contacts, the evidence in its consent history (IP address, browser, the text shown), the details of its
requests, and its login codes and attempts. Erasure also withdraws every consent, opts every contact out of
marketing for good (keyed hashes, which outlive the subject), deletes the register except what bookkeeping
law keeps, and tells every recipient. What stays is accountability without identity: the consent history,
the disclosure log and the audit trail (which never held values).

Everything happens in one transaction (the caller's, if it has one): all of it, or none of it.

rights_requests imports this module to carry out an erasure request, and this module asks rights_requests
to forget request details: the two import each other, and neither uses the other at import time."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import service as auth
from app.auth.principals import Principal
from app.catalog import service as catalog
from app.catalog.schemas import LegalBasis
from app.consent import service as consent
from app.consent.schemas import ConsentMethod
from app.core.db import transaction
from app.core.time import end_of_year
from app.disclosures import service as disclosures
from app.holds import service as holds
from app.marketing import service as marketing
from app.marketing.schemas import OptOutSource
from app.processors.schemas import TaskType
from app.rights_requests import service as rights_requests
from app.subjects import service as subjects
from app.visitors import service as visitors
from app.webhooks import service as outbox
from app.webhooks.schemas import EventType

RETENTION_REASON = (
    "Kept for bookkeeping: Bokföringslagen (1999:1078) 7 kap. 2 § requires accounting records to be "
    "kept until the end of the seventh year after the calendar year they concern."
)


def bookkeeping_until(collected_at: datetime) -> datetime:
    """Bokföringslagen 7 kap. 2 §: to the end of the seventh calendar year after the year of collection."""
    return end_of_year(collected_at.year + 7)


async def erase(
    session: AsyncSession, subject_id: uuid.UUID, *, actor: Principal, due_at: datetime | None = None
) -> None:
    """The right to be forgotten. Refused (409) while the subject is under a legal hold. The recipients'
    tasks are due with the request (`due_at`) and name whom to erase, as the register had it."""
    await transaction(session)
    await holds.refuse_if_held(session, subject_id, "Erasure")
    identifiers = await subjects.identifiers(session, subject_id)  # read before the register goes
    await consent.withdraw_all(session, subject_id, actor=actor, method=ConsentMethod.erasure)
    # The suppression entries: keyed hashes of the contacts, which outlive the subject.
    await marketing.opt_out_everywhere(session, subject_id, source=OptOutSource.erasure)
    keep = await catalog.purposes_with_basis(session, LegalBasis.legal_obligation)
    deleted, kept, email_hash = await subjects.erase(
        session,
        subject_id,
        keep_purposes=keep,
        retention_reason=RETENTION_REASON,
        retained_until=bookkeeping_until,
    )
    await _forget(session, subject_id, email_hash)
    await disclosures.create_recipient_tasks(
        session, subject_id, TaskType.erasure, actor=actor, due_at=due_at, identifiers=identifiers
    )
    await outbox.emit(
        session,
        EventType.subject_erased,
        {"subject_id": str(subject_id), "items_deleted": deleted, "items_retained": kept},
        subject_id=subject_id,
    )
    await audit.record(session, actor, "subject.erased", subject_id=subject_id)


async def anonymize(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Nothing in any table may link what remains to the person (the sweep has already deleted or anonymized
    the register). Contact opt-outs stay, as keyed hashes linked to no one, as they do after erasure."""
    await transaction(session)
    email_hash = await subjects.anonymize_subject(session, subject_id)
    await _forget(session, subject_id, email_hash)
    await outbox.emit(
        session, EventType.subject_anonymized, {"subject_id": str(subject_id)}, subject_id=subject_id
    )


async def _forget(session: AsyncSession, subject_id: uuid.UUID, email_hash: str | None) -> None:
    await consent.strip_evidence(session, subject_id)
    await rights_requests.forget_details(session, subject_id)
    await auth.forget_logins(session, email_hash)
    await visitors.forget_subject(session, subject_id)
