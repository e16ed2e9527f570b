"""The personal data breach register (GDPR Art. 33, 34).

A breach is registered by staff, or reported by a processor (Art. 33(2)); either way IMY is due 72 hours
after WeSafe became aware of it (`due_at`). Its life:

    open → assessed → notified | not_notified → closed

`assess` records the risk and the two decisions, each with its reason: notify IMY (required unless the
breach is unlikely to result in a risk, Art. 33(1)) and tell the subjects (required for a high risk unless an
Art. 34(3) ground applies). `record_imy_notification` records IMY's reference (after `due_at` only with the
reason for the delay); `record_no_notification` confirms the decision not to; `close` ends it, once every
subject to be told has been.

The subjects affected are found by queries over the disclosure log and the audit trail, saved with the
breach with what they found. Telling them is queued: each linked subject gets one notification row, mailed
by a sender after the request (in batches, each claimed for a while so that two senders never take the same
one), and marked sent after its mail went out. Everything is audited and announced as a webhook."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal
from app.breaches import notices, repository
from app.breaches.models import Breach, BreachQuery, BreachSubject
from app.breaches.schemas import (
    OPEN_FOR_IMY,
    AssessBreach,
    BreachAction,
    BreachAssessment,
    BreachAuditQuery,
    BreachCreate,
    BreachDisclosureQuery,
    BreachFacts,
    BreachImyNotification,
    BreachNotificationRun,
    BreachNotifySubjects,
    BreachQueryRead,
    BreachRead,
    BreachReportCreate,
    BreachReportRead,
    BreachRisk,
    BreachStatus,
    BreachSubjectCounts,
    BreachSubjectNotice,
    BreachSubjectRead,
    CloseBreach,
    RecordImyNotification,
    SubjectNotification,
    SubjectQuery,
)
from app.catalog import service as catalog
from app.core.db import transaction, unit_of_work
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.time import rfc3339, utc_now
from app.processors import service as processors
from app.webhooks import service as outbox

log = logging.getLogger(__name__)

IMY_DEADLINE = timedelta(hours=72)
# Breaches are kept this long after they are closed (docs/behaviour.md, "Breaches"); then the retention
# sweep deletes them with their links and queries.
KEPT_AFTER_CLOSING = timedelta(days=5 * 365 + 1)  # five years, a leap day included
RETENTION = "Kept 5 years after the breach is closed, then deleted with its links and queries."
# Notifications are mailed in batches of this many; a claim older than the lease is taken over.
SEND_BATCH = 50
LEASE = timedelta(minutes=10)
# A timestamp may be this far ahead of the server's clock (the caller's clock).
CLOCK_LEEWAY = timedelta(minutes=5)
SENDER = Principal.system("breach-notifications")


class BreachNotFound(NotFound):
    title = "Breach not found"


class IllegalTransition(Conflict):
    title = "This action is not allowed in the breach's current state"


# --- rendering


def _overdue(breach: Breach, now: datetime) -> bool:
    return breach.status in OPEN_FOR_IMY and breach.due_at < now


def render(breach: Breach, counts: dict[str, int]) -> BreachRead:
    now = utc_now()
    return BreachRead(
        id=breach.id,
        title=breach.title,
        description=breach.description,
        status=BreachStatus(breach.status),
        reported_by=breach.reported_by,
        processor_id=breach.processor_id,
        occurred_at=breach.occurred_at,
        processor_aware_at=breach.processor_aware_at,
        aware_at=breach.aware_at,
        due_at=breach.due_at,
        overdue=_overdue(breach, now),
        created_at=breach.created_at,
        updated_at=breach.updated_at,
        data_categories=list(breach.data_categories),
        subject_categories=list(breach.subject_categories),
        subjects_estimate=breach.subjects_estimate,
        records_estimate=breach.records_estimate,
        consequences=breach.consequences,
        measures=breach.measures,
        assessment=BreachAssessment(
            risk=breach.risk,
            notify_imy=breach.notify_imy,
            imy_reason=breach.imy_reason,
            notify_subjects=breach.notify_subjects,
            subjects_reason=breach.subjects_reason,
            subjects_exception=breach.subjects_exception,
            assessed_at=breach.assessed_at,
            assessed_by=breach.assessed_by,
        ),
        imy=BreachImyNotification(
            due_at=breach.due_at,
            overdue=_overdue(breach, now),
            notified_at=breach.imy_notified_at,
            reference=breach.imy_reference,
            delay_reason=breach.imy_delay_reason,
        ),
        subject_notice=BreachSubjectNotice.model_validate(breach.subject_notice)
        if breach.subject_notice
        else None,
        subjects=BreachSubjectCounts(**counts),
        closed_at=breach.closed_at,
        closed_by=breach.closed_by,
        closing_note=breach.closing_note,
    )


def render_report(breach: Breach) -> BreachReportRead:
    return BreachReportRead.model_validate(breach, from_attributes=True)


async def _render_all(session: AsyncSession, breaches: Sequence[Breach]) -> list[BreachRead]:
    counts = await repository.counts(session, [b.id for b in breaches])
    return [render(b, counts[b.id]) for b in breaches]


async def read(session: AsyncSession, breach_id: uuid.UUID) -> BreachRead:
    return (await _render_all(session, [await get(session, breach_id)]))[0]


# --- registering and reporting


def _announcement(breach: Breach | dict[str, Any], change: str) -> dict[str, Any]:
    value = (
        breach
        if isinstance(breach, dict)
        else {k: getattr(breach, k) for k in ("id", "status", "due_at", "processor_id")}
    )
    return {
        "breach_id": str(value["id"]),
        "status": value["status"],
        "change": change,
        "due_at": rfc3339(value["due_at"]),
        "reported_by_processor": str(value["processor_id"]) if value["processor_id"] else None,
    }


def _not_in_future(moment: datetime | None, now: datetime, loc: list[str | int]) -> None:
    if moment is not None and moment > now + CLOCK_LEEWAY:
        raise Unprocessable("A time that has not come yet", loc=loc)


async def _register(
    session: AsyncSession,
    data: BreachFacts,
    *,
    actor: Principal,
    aware_at: datetime,
    processor_id: uuid.UUID | None,
    processor_aware_at: datetime | None,
) -> Breach:
    now = utc_now()
    _not_in_future(data.occurred_at, now, ["body", "occurred_at"])
    if data.occurred_at is not None and data.occurred_at > aware_at:
        raise Unprocessable(
            "A breach cannot have occurred after it became known", loc=["body", "occurred_at"]
        )
    await transaction(session)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": data.title,
        "description": data.description,
        "status": BreachStatus.open,
        "reported_by": actor.key,
        "processor_id": processor_id,
        "occurred_at": data.occurred_at,
        "processor_aware_at": processor_aware_at,
        "aware_at": aware_at,
        "due_at": aware_at + IMY_DEADLINE,
        "created_at": now,
        "updated_at": now,
        "data_categories": sorted({str(c) for c in data.data_categories}),
        "subject_categories": list(dict.fromkeys(data.subject_categories)),
        "subjects_estimate": data.subjects_estimate,
        "records_estimate": data.records_estimate,
        "consequences": data.consequences,
        "measures": data.measures,
        "risk": None,
        "notify_imy": None,
        "imy_reason": None,
        "notify_subjects": None,
        "subjects_reason": None,
        "subjects_exception": None,
        "assessed_at": None,
        "assessed_by": None,
        "imy_notified_at": None,
        "imy_reference": None,
        "imy_delay_reason": None,
        "subject_notice": None,
        "closed_at": None,
        "closed_by": None,
        "closing_note": None,
    }
    await repository.insert(session, values)
    await outbox.emit(session, "breach.reported", _announcement(values, "reported"))
    action = "breach.reported" if processor_id else "breach.registered"
    await audit.record(session, actor, action, target=str(values["id"]))
    return await get(session, values["id"])


async def create(session: AsyncSession, data: BreachCreate, *, actor: Principal) -> BreachRead:
    """Staff register a breach they learned of (`aware_at`, default now)."""
    now = utc_now()
    _not_in_future(data.aware_at, now, ["body", "aware_at"])
    breach = await _register(
        session, data, actor=actor, aware_at=data.aware_at or now, processor_id=None, processor_aware_at=None
    )
    return render(breach, (await repository.counts(session, [breach.id]))[breach.id])


async def report(session: AsyncSession, data: BreachReportCreate, *, actor: Principal) -> BreachReportRead:
    """A processor reports a breach to WeSafe (Art. 33(2)): WeSafe is aware from now on."""
    processor_id = actor.processor_id
    assert processor_id is not None
    processor = await processors.get_processor(session, processor_id)  # 404 for a processor not registered
    now = utc_now()
    _not_in_future(data.processor_aware_at, now, ["body", "processor_aware_at"])
    breach = await _register(
        session,
        data,
        actor=actor,
        aware_at=now,
        processor_id=processor.id,
        processor_aware_at=data.processor_aware_at,
    )
    return render_report(breach)


async def get(session: AsyncSession, breach_id: uuid.UUID, *, lock: bool = False) -> Breach:
    breach = await repository.get(session, breach_id, lock=lock)
    if breach is None:
        raise BreachNotFound("No breach with this id")
    return breach


async def read_report(session: AsyncSession, breach_id: uuid.UUID, *, caller: Principal) -> BreachReportRead:
    """A processor's own report; any other is a 404, as one that does not exist."""
    breach = await repository.get(session, breach_id)
    if breach is None or breach.processor_id is None or breach.processor_id != caller.processor_id:
        raise BreachNotFound("No breach report with this id")
    return render_report(breach)


async def list_breaches(
    session: AsyncSession,
    *,
    status: BreachStatus | None,
    overdue: bool | None,
    processor_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[BreachRead], str | None]:
    breaches, next_cursor = await repository.list_breaches(
        session,
        status=status,
        processor_id=processor_id,
        overdue=overdue,
        now=utc_now(),
        limit=limit,
        cursor=cursor,
    )
    return await _render_all(session, breaches), next_cursor


async def list_reports(
    session: AsyncSession, *, caller: Principal, limit: int, cursor: str | None
) -> tuple[list[BreachReportRead], str | None]:
    assert caller.processor_id is not None
    breaches, next_cursor = await repository.list_breaches(
        session,
        status=None,
        processor_id=caller.processor_id,
        overdue=None,
        now=utc_now(),
        limit=limit,
        cursor=cursor,
    )
    return [render_report(b) for b in breaches], next_cursor


# --- moving on


async def act(
    session: AsyncSession, breach_id: uuid.UUID, data: BreachAction, *, actor: Principal
) -> BreachRead:
    await transaction(session)
    breach = await get(session, breach_id, lock=True)
    now = utc_now()
    if isinstance(data, AssessBreach):
        changes = _assess(breach, data, actor)
    elif isinstance(data, RecordImyNotification):
        changes = _imy_notified(breach, data, now)
    elif isinstance(data, CloseBreach):
        changes = await _close(session, breach, data, actor, now)
    else:  # record_no_notification
        if breach.status != BreachStatus.assessed or breach.notify_imy is not False:
            raise IllegalTransition(
                "Only an assessed breach that IMY is not to be told of can be recorded so"
            )
        changes = {"status": BreachStatus.not_notified}
        if data.note:  # added to the decision's reason
            changes["imy_reason"] = f"{breach.imy_reason}\n{data.note}" if breach.imy_reason else data.note
    await repository.update_breach(session, breach.id, updated_at=now, **changes)
    moved = await get(session, breach.id)
    await outbox.emit(session, "breach.updated", _announcement(moved, data.action))
    await audit.record(session, actor, f"breach.{data.action}", target=str(breach.id))
    return await read(session, breach.id)


def _assess(breach: Breach, data: AssessBreach, actor: Principal) -> dict[str, Any]:
    if breach.status not in OPEN_FOR_IMY:
        raise IllegalTransition(f"A {breach.status} breach can no longer be assessed")
    if data.risk != BreachRisk.unlikely and not data.notify_imy:
        raise Unprocessable(
            "A breach that may result in a risk to people must be notified to IMY (Art. 33(1)); only one "
            "unlikely to do so may be left unnotified",
            loc=["body", "notify_imy"],
        )
    if data.risk == BreachRisk.high and not data.notify_subjects and data.subjects_exception is None:
        raise Unprocessable(
            "The subjects of a high-risk breach must be told (Art. 34(1)) unless an Art. 34(3) ground "
            "applies: name it in subjects_exception",
            loc=["body", "subjects_exception"],
        )
    changes: dict[str, Any] = {
        "status": BreachStatus.assessed,
        "risk": data.risk,
        "notify_imy": data.notify_imy,
        "imy_reason": data.imy_reason,
        "notify_subjects": data.notify_subjects,
        "subjects_reason": data.subjects_reason,
        "subjects_exception": None if data.notify_subjects else data.subjects_exception,
        "assessed_at": utc_now(),
        "assessed_by": actor.key,
    }
    if data.consequences is not None:
        changes["consequences"] = data.consequences
    if data.measures is not None:
        changes["measures"] = data.measures
    return changes


def _imy_notified(breach: Breach, data: RecordImyNotification, now: datetime) -> dict[str, Any]:
    if breach.status != BreachStatus.assessed or not breach.notify_imy:
        raise IllegalTransition(
            "IMY's notification is recorded for an assessed breach that IMY is to be told of"
        )
    at = data.notified_at or now
    _not_in_future(at, now, ["body", "notified_at"])
    if at < breach.aware_at:
        raise Unprocessable("IMY cannot have been told before WeSafe knew", loc=["body", "notified_at"])
    if at > breach.due_at and data.delay_reason is None:
        raise Unprocessable(
            "IMY was told more than 72 hours after WeSafe became aware: give the reasons for the delay "
            "(Art. 33(1))",
            loc=["body", "delay_reason"],
        )
    return {
        "status": BreachStatus.notified,
        "imy_notified_at": at,
        "imy_reference": data.reference,
        "imy_delay_reason": data.delay_reason if at > breach.due_at else None,
    }


async def _close(
    session: AsyncSession, breach: Breach, data: CloseBreach, actor: Principal, now: datetime
) -> dict[str, Any]:
    if breach.status not in (BreachStatus.notified, BreachStatus.not_notified):
        raise IllegalTransition("A breach is closed once IMY has been notified or it was decided not to")
    if breach.notify_subjects:
        counts = (await repository.counts(session, [breach.id]))[breach.id]
        untold = counts["affected"] - counts["sent"] - counts["skipped"]
        if untold:
            raise IllegalTransition(
                f"{untold} affected subject(s) have not been told yet (POST .../subject-notifications)"
            )
    return {
        "status": BreachStatus.closed,
        "closed_at": now,
        "closed_by": actor.key,
        "closing_note": data.note,
    }


# --- finding the subjects affected


async def query_subjects(
    session: AsyncSession, breach_id: uuid.UUID, query: SubjectQuery, *, actor: Principal
) -> BreachQueryRead:
    """Run the query, link what it finds to the breach, and save both."""
    await transaction(session)
    breach = await get(session, breach_id, lock=True)
    if query.until <= query.from_:
        raise Unprocessable("`until` must come after `from`", loc=["body", "until"])
    if breach.status == BreachStatus.closed:
        raise IllegalTransition("A closed breach takes no more subjects")
    if isinstance(query, BreachDisclosureQuery):
        await processors.get_processor(session, query.recipient_id)  # 404: no such recipient
        found = await repository.subjects_disclosed(
            session,
            recipient_id=query.recipient_id,
            since=query.from_,
            until=query.until,
            purpose=query.purpose,
            categories=[str(c) for c in query.categories] if query.categories else None,
        )
    else:
        assert isinstance(query, BreachAuditQuery)
        if query.action is None and query.actor is None:
            raise Unprocessable("Name an `action`, an `actor`, or both", loc=["body"])
        found = await repository.existing_subjects(
            session,
            await repository.subjects_in_audit(
                session, action=query.action, actor=query.actor, since=query.from_, until=query.until
            ),
        )
    new = sorted(found - await repository.linked(session, breach.id))
    now = utc_now()
    saved: dict[str, Any] = {
        "id": uuid.uuid4(),
        "breach_id": breach.id,
        "criteria": query.model_dump(mode="json", by_alias=True, exclude_none=True),
        "ran_at": now,
        "ran_by": actor.key,
        "matched": len(found),
        "linked": len(new),
    }
    await repository.add_query(session, saved)
    await _link(session, breach, new, actor=actor, query_id=saved["id"], at=now)
    await audit.record(session, actor, "breach.subjects_queried", target=str(breach.id))
    await outbox.emit(session, "breach.updated", _announcement(breach, "subjects_queried"))
    return BreachQueryRead.model_validate(saved)


async def _link(
    session: AsyncSession,
    breach: Breach,
    subject_ids: list[uuid.UUID],
    *,
    actor: Principal,
    query_id: uuid.UUID | None,
    at: datetime,
) -> None:
    if not subject_ids:
        return
    # Linked after the assessment chose to tell subjects, and after the telling began: queued with the rest.
    queue = breach.subject_notice is not None
    await repository.add_links(
        session,
        [
            {
                "breach_id": breach.id,
                "subject_id": subject_id,
                "added_at": at,
                "added_by": actor.key,
                "query_id": query_id,
                "notification": SubjectNotification.pending if queue else None,
                "queued_at": at if queue else None,
                "claimed_at": None,
                "notified_at": None,
                "language": None,
            }
            for subject_id in subject_ids
        ],
    )
    await audit.record_many(
        session, actor, [(s, "breach.subject_linked", str(breach.id)) for s in subject_ids]
    )


async def list_queries(session: AsyncSession, breach_id: uuid.UUID) -> list[BreachQueryRead]:
    await get(session, breach_id)
    return [_query_read(q) for q in await repository.queries(session, breach_id)]


class QueryNotFound(NotFound):
    title = "Breach query not found"


async def get_query(session: AsyncSession, breach_id: uuid.UUID, query_id: uuid.UUID) -> BreachQueryRead:
    found = [q for q in await repository.queries(session, breach_id) if q.id == query_id]
    if not found:
        raise QueryNotFound("No query with this id for this breach")
    return _query_read(found[0])


def _query_read(query: BreachQuery) -> BreachQueryRead:
    return BreachQueryRead.model_validate(query, from_attributes=True)


async def list_subjects(
    session: AsyncSession,
    breach_id: uuid.UUID,
    *,
    notification: SubjectNotification | None,
    limit: int,
    cursor: str | None,
    actor: Principal,
) -> tuple[list[BreachSubjectRead], str | None]:
    await get(session, breach_id)
    links, next_cursor = await repository.list_links(
        session, breach_id, notification=notification, limit=limit, cursor=cursor
    )
    await audit.record(session, actor, "breach.subjects_listed", target=str(breach_id))  # who saw who
    return [_link_read(link) for link in links], next_cursor


def _link_read(link: BreachSubject) -> BreachSubjectRead:
    return BreachSubjectRead.model_validate(link, from_attributes=True)


# --- telling the subjects (Art. 34)


async def request_notifications(
    session: AsyncSession, breach_id: uuid.UUID, data: BreachNotifySubjects, *, actor: Principal
) -> BreachNotificationRun:
    """Queue a notification for every linked subject not yet queued (none is queued twice); the sender mails
    them after the request (`send_pending`). Calling again resumes whatever a stopped sender left."""
    await transaction(session)
    breach = await get(session, breach_id, lock=True)
    if breach.status not in (BreachStatus.assessed, BreachStatus.notified, BreachStatus.not_notified):
        raise IllegalTransition(f"The subjects of a {breach.status} breach are not told (assess it first)")
    if not breach.notify_subjects:
        raise IllegalTransition("The assessment decided not to tell the subjects")
    notice = data.notice.model_dump(mode="json") if data.notice else None
    if breach.subject_notice is None:
        if notice is None:
            raise Unprocessable(
                "The first call gives the notice the subjects are sent", loc=["body", "notice"]
            )
    elif notice is not None and notice != breach.subject_notice:
        raise Conflict("The subjects' notice is already set: some may have it; it cannot change now")
    now = utc_now()
    changes: dict[str, Any] = {"updated_at": now}
    if breach.subject_notice is None:
        changes["subject_notice"] = notice
    await repository.update_breach(session, breach.id, **changes)
    queued = await repository.queue_notifications(session, breach.id, now)
    await audit.record(session, actor, "breach.subjects_notification_requested", target=str(breach.id))
    await outbox.emit(session, "breach.updated", _announcement(breach, "subjects_notification_requested"))
    counts = (await repository.counts(session, [breach.id]))[breach.id]
    return BreachNotificationRun(breach_id=breach.id, queued=queued, subjects=BreachSubjectCounts(**counts))


async def send_pending(sessions: async_sessionmaker[AsyncSession], breach_id: uuid.UUID) -> int:
    """Mail the breach's pending notifications, a batch at a time: claim a batch (committed), mail each, and
    mark each sent (with its audit event) as soon as its mail went out. How many were sent. A sender that
    stops leaves its claims to run out (LEASE); the next call takes them over."""
    sent = 0
    while True:
        async with unit_of_work(sessions) as session:
            now = utc_now()
            breach = await get(session, breach_id)
            claimed = await repository.claim(
                session, breach_id, now=now, stale_before=now - LEASE, limit=SEND_BATCH
            )
            found = await repository.addresses(session, claimed)
            settings = runtime.of(session).settings
            mailer = runtime.of(session).mailer
            controller = catalog.controller(settings)
        if not claimed:
            return sent
        for subject_id in claimed:
            address = found.get(subject_id)
            if address is None or not address.email or breach.subject_notice is None:
                async with unit_of_work(sessions) as session:
                    await repository.mark(
                        session,
                        breach_id,
                        subject_id,
                        notification=SubjectNotification.skipped,
                        claimed_at=None,
                    )
                    await audit.record(
                        session,
                        SENDER,
                        "breach.subject_not_notified",
                        subject_id=subject_id,
                        target=str(breach_id),
                    )
                continue
            mail = notices.breach_mail(
                address.email,
                language=address.language,
                notice=breach.subject_notice,
                categories=list(breach.data_categories),
                name=address.name,
                aware_at=breach.aware_at,
                contact=controller.contact_email,
                controller=controller.name,
            )
            await mailer.send(mail)
            async with unit_of_work(sessions) as session:
                await repository.mark(
                    session,
                    breach_id,
                    subject_id,
                    notification=SubjectNotification.sent,
                    notified_at=utc_now(),
                    claimed_at=None,
                    language=address.language,
                )
                await audit.record(
                    session, SENDER, "breach.subject_notified", subject_id=subject_id, target=str(breach_id)
                )
            sent += 1


# --- retention and the record of processing


async def purge_expired(session: AsyncSession) -> int:
    """Breaches closed more than five years ago, with their links and queries (the retention sweep)."""
    doomed = await repository.closed_before(session, utc_now() - KEPT_AFTER_CLOSING)
    if doomed:
        await audit.record_many(
            session, Principal.system("retention"), [(None, "breach.purged", str(b)) for b in doomed]
        )
    return await repository.delete_breaches(session, doomed)


async def register_summary(session: AsyncSession) -> dict[str, int]:
    """How many breaches the register holds in each status."""
    return await repository.register_summary(session)
