"""The disclosure log: append-only evidence of who received a subject's data, and the recipient tasks that
follow when that data is erased, rectified or restricted (GDPR Art. 19)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.catalog.schemas import LegalBasis
from app.consent.schemas import ConsentStatus
from app.core.db import transaction
from app.core.errors import NotFound, Unprocessable
from app.core.time import utc_now
from app.disclosures import repository
from app.disclosures.models import Disclosure
from app.disclosures.repository import Facts
from app.disclosures.schemas import DisclosureCreate, DisclosureFlag, DisclosureRead
from app.processors import service as processors
from app.processors.countries import is_third_country
from app.processors.schemas import TaskChange, TaskDetails, TaskType
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus

_CLOCK_SKEW = timedelta(minutes=5)


def _recipient_of(item: DisclosureCreate, caller: Principal) -> uuid.UUID | None:
    # A processor reports what it received itself, whatever it sends.
    return caller.processor_id if caller.role == Role.processor else item.recipient_id


def _problem(
    item: DisclosureCreate, caller: Principal, now: datetime, facts: Facts
) -> tuple[str, str] | None:
    """(field, message) for what is wrong with one item, or None."""
    recipient = _recipient_of(item, caller)
    if recipient is None:
        return "recipient_id", "staff must name the recipient"
    if item.subject_id not in facts.subjects:
        return "subject_id", "no such subject"
    if recipient not in facts.recipients:
        return "recipient_id", "no such processor"
    if item.purpose not in facts.purposes:
        return "purpose", "no such purpose"
    if item.disclosed_at is not None and item.disclosed_at > now + _CLOCK_SKEW:
        return "disclosed_at", "a disclosure cannot be in the future"
    return None


def _flags(item: DisclosureCreate, recipient_id: uuid.UUID, at: datetime, facts: Facts) -> list[str]:
    """The rules a disclosure breaks, judged at the moment it was made (`at`): the subject erased by then;
    restricted (now: restriction records no start), for a purpose other than a legal obligation; a consent
    purpose without consent granted at that moment (the latest event at or before it); a recipient in a third
    country without a transfer mechanism, ended by then, or whose agreement (Art. 28(3)) had expired."""
    subject, recipient = facts.subjects[item.subject_id], facts.recipients[recipient_id]
    basis = facts.purposes[item.purpose]
    flags: list[str] = []
    if subject.status == SubjectStatus.erased and (subject.erased_at is None or subject.erased_at <= at):
        flags.append(DisclosureFlag.subject_erased)
    if subject.status == SubjectStatus.restricted and basis != LegalBasis.legal_obligation:
        flags.append(DisclosureFlag.subject_restricted)
    if basis == LegalBasis.consent:
        events = [e for e in facts.consents.get((item.subject_id, item.purpose), []) if e[0] <= at]
        if not events or max(events)[1] != ConsentStatus.granted:
            flags.append(DisclosureFlag.no_consent)
    if is_third_country(recipient.country) and recipient.transfer_mechanism is None:
        flags.append(DisclosureFlag.no_transfer_mechanism)
    if recipient.ended_at is not None and recipient.ended_at <= at:
        flags.append(DisclosureFlag.processor_ended)
    if recipient.dpa_expires_on is not None and recipient.dpa_expires_on < at.astimezone(UTC).date():
        flags.append(DisclosureFlag.dpa_expired)
    return flags


async def _facts(session: AsyncSession, items: Sequence[DisclosureCreate], caller: Principal) -> Facts:
    """What a report may name, and what its checks need. Staff: every subject. A processor: only the subjects
    disclosed to it (by staff, or by a task addressed to it); any other is unknown to it, answered as an id
    that does not exist is, so that its answers tell it nothing about which ids exist (docs/security.md,
    "Processor reports")."""
    subject_ids = {i.subject_id for i in items}
    processor_id = caller.processor_id if caller.role == Role.processor else None
    if processor_id is not None:
        subject_ids = await repository.disclosed_to(session, processor_id, subject_ids)
    return await repository.facts(
        session,
        subject_ids,
        {r for i in items if (r := _recipient_of(i, caller)) is not None},
        {i.purpose for i in items},
    )


async def _append(
    session: AsyncSession,
    items: Sequence[DisclosureCreate],
    caller: Principal,
    now: datetime,
    facts: Facts,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in items:
        recipient_id = _recipient_of(i, caller)
        assert recipient_id is not None  # _problem refused it otherwise
        at = i.disclosed_at or now
        flags = _flags(i, recipient_id, at, facts)
        rows.append(
            {
                "id": uuid.uuid4(),
                "subject_id": i.subject_id,
                "recipient_id": recipient_id,
                "categories": [str(c) for c in dict.fromkeys(i.categories)],
                "purpose": i.purpose,
                "disclosed_at": at,
                "recorded_at": now,
                "reported_by": caller.key,
                "flagged": bool(flags),
                "flags": [str(f) for f in flags] or None,
            }
        )
    await transaction(session)
    await repository.insert(session, rows)
    await audit.record_each(session, caller, "disclosure.recorded", (r["subject_id"] for r in rows))
    flagged = [r["subject_id"] for r in rows if r["flagged"]]
    if flagged:
        await audit.record_each(session, caller, "disclosure.flagged", flagged)
    return rows


async def record(session: AsyncSession, item: DisclosureCreate, *, caller: Principal) -> uuid.UUID:
    """One disclosure. An unknown subject or recipient is a 404; other faults are 422 on their field."""
    now = utc_now()
    facts = await _facts(session, [item], caller)
    problem = _problem(item, caller, now, facts)
    if problem is not None:
        field, message = problem
        if field in ("subject_id", "recipient_id") and message.startswith("no such"):
            raise NotFound(f"{message.capitalize()}: {field}")
        raise Unprocessable(message, loc=["body", field])
    [row] = await _append(session, [item], caller, now, facts)
    disclosure_id: uuid.UUID = row["id"]
    return disclosure_id


async def record_batch(session: AsyncSession, items: Sequence[DisclosureCreate], *, caller: Principal) -> int:
    """All or nothing: the first bad item fails the batch with a 422 naming its index and field."""
    now = utc_now()
    facts = await _facts(session, items, caller)
    for index, item in enumerate(items):
        problem = _problem(item, caller, now, facts)
        if problem is not None:
            field, message = problem
            raise Unprocessable(f"Item {index}: {message}", loc=["body", "items", index, field], index=index)
    return len(await _append(session, items, caller, now, facts))


# What a processor is shown of a disclosure's flags: those about itself, not the subject's state.
_RECIPIENT_FLAGS = frozenset(
    {DisclosureFlag.no_transfer_mechanism, DisclosureFlag.processor_ended, DisclosureFlag.dpa_expired}
)


async def _render(
    session: AsyncSession, disclosures: Sequence[Disclosure], caller: Principal
) -> list[DisclosureRead]:
    recipients = await processors.processors_by_id(session, {d.recipient_id for d in disclosures})
    rendered = []
    for d in disclosures:
        flags = [DisclosureFlag(f) for f in d.flags or []]
        if caller.role == Role.processor:
            flags = [f for f in flags if f in _RECIPIENT_FLAGS]
        rendered.append(
            DisclosureRead(
                id=d.id,
                recipient=processors.recipient(recipients[d.recipient_id]),
                categories=d.categories,
                purpose=d.purpose,
                disclosed_at=d.disclosed_at,
                recorded_at=d.recorded_at,
                reported_by=d.reported_by,
                flagged=bool(flags),
                flags=flags,
            )
        )
    return rendered


async def _reach(session: AsyncSession, disclosure_id: uuid.UUID, caller: Principal) -> Disclosure:
    """Staff reach every disclosure; a processor only those made to it."""
    disclosure = await repository.get(session, disclosure_id)
    if disclosure is None or (
        caller.role == Role.processor and disclosure.recipient_id != caller.processor_id
    ):
        raise NotFound("Disclosure not found")
    return disclosure


async def get_disclosure(
    session: AsyncSession, disclosure_id: uuid.UUID, *, caller: Principal
) -> DisclosureRead:
    return (await _render(session, [await _reach(session, disclosure_id, caller)], caller))[0]


async def read_disclosure(
    session: AsyncSession, disclosure_id: uuid.UUID, *, caller: Principal
) -> DisclosureRead:
    """One disclosure, as a reader of the log or its recipient sees it (audited)."""
    disclosure = await _reach(session, disclosure_id, caller)
    await audit.record(
        session, caller, "disclosure.read", subject_id=disclosure.subject_id, target=str(disclosure.id)
    )
    return (await _render(session, [disclosure], caller))[0]


async def list_for_subject(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal, limit: int, cursor: str | None
) -> tuple[list[DisclosureRead], str | None]:
    """Who received the subject's data (GDPR Art. 15(1)(c)), newest first, with each recipient's country."""
    subject = await subjects.reach(session, subject_id, caller)
    disclosures, next_cursor = await repository.list_for_subject(
        session, subject.id, limit=limit, cursor=cursor
    )
    await audit.record(session, caller, "disclosure.read", subject_id=subject.id)
    return await _render(session, disclosures, caller), next_cursor


async def list_log(
    session: AsyncSession,
    *,
    caller: Principal,
    flagged: bool | None,
    recipient_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DisclosureRead], str | None]:
    """The log across subjects, for staff: the flagged disclosures to review, or one recipient's (audited)."""
    disclosures, next_cursor = await repository.list_all(
        session, flagged=flagged, recipient_id=recipient_id, limit=limit, cursor=cursor
    )
    await audit.record(
        session,
        caller,
        "disclosure.listed",
        target=" ".join(
            f"{k}={v}" for k, v in (("flagged", flagged), ("recipient_id", recipient_id)) if v is not None
        )
        or None,
    )
    return await _render(session, disclosures, caller), next_cursor


async def recipients_of(session: AsyncSession, subject_id: uuid.UUID) -> list[uuid.UUID]:
    return await repository.recipients_of(session, subject_id)


async def create_recipient_tasks(
    session: AsyncSession,
    subject_id: uuid.UUID,
    task_type: TaskType,
    *,
    actor: Principal,
    due_at: datetime | None = None,
    identifiers: Mapping[str, list[str]] | None = None,
    changes: Sequence[Mapping[str, Any]] = (),
) -> list[processors.ProcessorTask]:
    """One open task for each distinct recipient in the subject's disclosure log, in the caller's transaction
    (used when a rights request erases, rectifies or restricts the subject's data). Each recipient is told
    only about the categories it received: which they are, its identifiers among them, and what changed."""
    received = await repository.categories_by_recipient(session, subject_id)
    details = {
        recipient_id: TaskDetails(
            categories=sorted(categories),
            identifiers={c: v for c, v in (identifiers or {}).items() if c in categories} or None,
            changes=[TaskChange.model_validate(c) for c in changes if c["category"] in categories] or None,
        )
        for recipient_id, categories in received.items()
    }
    return await processors.create_tasks(session, subject_id, task_type, details, actor=actor, due_at=due_at)


async def recipients_by_purpose(session: AsyncSession) -> dict[str, set[uuid.UUID]]:
    """Which processors have received data for which purpose (the record of processing lists them)."""
    return await repository.recipients_by_purpose(session)
