"""The retention sweep: walks the subjects in batches, each batch its own transaction with the run's progress,
deleting or anonymizing what has expired and anonymizing subjects of whom nothing identifying is left.

Bounded memory (one batch at a time), safe to interrupt and to run again (what is done stays done; what is
not is found again), and short transactions, so that it never holds up the API."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import runtime
from app.audit import service as audit
from app.auth import service as auth
from app.auth.principals import Principal
from app.catalog import service as catalog
from app.catalog.schemas import RetentionAction
from app.consent import service as consent
from app.core.db import savepoint, transaction, unit_of_work
from app.core.errors import Conflict, NotFound
from app.core.time import utc_now
from app.erasure import service as erasure
from app.holds import service as holds
from app.idempotency import service as idempotency
from app.privacy_center import service as privacy_center
from app.retention import repository, rules
from app.retention.models import RetentionRun
from app.retention.schemas import RunStatus
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.visitors import service as visitors

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A run that has not moved for this long is no longer running (its process stopped).
STALE = timedelta(minutes=10)
SWEEPER = Principal.system("retention")


class RunNotFound(NotFound):
    title = "Retention run not found"


class Tally:
    """The report, kept as counters (bounded by purposes x categories x rules, never by data size)."""

    def __init__(self, report: dict[str, Any] | None = None) -> None:
        report = report or {}
        self.actions: Counter[tuple[str, str, str]] = Counter(
            {(a["purpose"], a["category"], a["action"]): a["count"] for a in report.get("actions", [])}
        )
        self.kept: Counter[tuple[str, str, str, str]] = Counter(
            {
                (k["purpose"], k["category"], k["rule"], k["reason"]): k["count"]
                for k in report.get("kept", [])
            }
        )
        self.subjects: Counter[str] = Counter(report.get("subjects", {}))

    def as_report(self) -> dict[str, Any]:
        return {
            "actions": [
                {"purpose": p, "category": c, "action": a, "count": n}
                for (p, c, a), n in sorted(self.actions.items())
            ],
            "kept": [
                {"purpose": p, "category": c, "rule": r, "reason": why, "count": n}
                for (p, c, r, why), n in sorted(self.kept.items())
            ],
            "subjects": dict(sorted(self.subjects.items())),
        }


async def start(session: AsyncSession, *, dry_run: bool, actor: Principal) -> RetentionRun:
    """A new run (not yet executing), in the caller's transaction. Runs that stopped moving are marked
    interrupted; one real run at a time."""
    await transaction(session)
    now = utc_now()
    await repository.interrupt_stale(session, quiet_since=now - STALE, at=now)
    if not dry_run:
        busy = await repository.running(session)
        if busy is not None:
            raise Conflict("A retention run is already under way", run_id=str(busy))
    run_id = uuid.uuid4()
    await repository.insert(
        session,
        {
            "id": run_id,
            "dry_run": dry_run,
            "status": RunStatus.running,
            "requested_by": actor.key,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "cursor": None,
            "subjects_scanned": 0,
            "items_scanned": 0,
            "report": {},
            "error": None,
        },
    )
    await audit.record(session, actor, "retention.run_started", target=str(run_id))
    return await get(session, run_id)


async def get(session: AsyncSession, run_id: uuid.UUID) -> RetentionRun:
    run = await repository.get(session, run_id)
    if run is None:
        raise RunNotFound("No retention run with this id")
    return run


async def list_runs(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[RetentionRun], str | None]:
    return await repository.list_runs(session, limit=limit, cursor=cursor)


async def execute(
    sessions: async_sessionmaker[AsyncSession], run_id: uuid.UUID, *, batch_size: int = BATCH_SIZE
) -> RetentionRun:
    """Carry the run through every batch, each its own transaction. On failure the run is marked failed; what
    was committed stays."""
    try:
        while True:
            async with unit_of_work(sessions) as session:
                run = await get(session, run_id)
                if run.status != RunStatus.running:
                    return run
                more = await _batch(session, run, batch_size)
            if not more:
                break
        async with unit_of_work(sessions) as session:
            run = await get(session, run_id)
            purged = await _purge(session, dry_run=run.dry_run)
            await repository.update_run(
                session,
                run.id,
                report={**run.report, "purged": purged},
                status=RunStatus.completed,
                finished_at=utc_now(),
            )
            await audit.record(session, SWEEPER, "retention.run_completed", target=str(run.id))
        async with sessions() as session:
            return await get(session, run_id)
    except Exception as exc:
        log.exception("retention run failed")
        async with unit_of_work(sessions) as session:
            await repository.update_run(
                session, run_id, status=RunStatus.failed, finished_at=utc_now(), error=type(exc).__name__
            )
        raise


async def _batch(session: AsyncSession, run: RetentionRun, batch_size: int) -> bool:
    """One batch of subjects, in one transaction with the run's progress. False when it was the last."""
    after = uuid.UUID(run.cursor) if run.cursor else None
    page = await subjects.retention_page(session, after, batch_size)
    if not page:
        return False
    now = utc_now()
    ids = [row.id for row in page]
    purposes = {p.code: p for p in await catalog.list_purposes(session)}
    held = await holds.held(session, ids)
    consents = await consent.states_for(session, ids)
    relationship_ended = {row.id: row.relationship_ended_at for row in page}
    tally = Tally(run.report)
    doomed: list[uuid.UUID] = []
    fading: list[uuid.UUID] = []
    per_subject: Counter[tuple[uuid.UUID, str]] = Counter()
    items = await subjects.retention_items(session, ids)
    for item in items:
        if item.subject_id in held:
            tally.kept[(item.purpose, item.category, "legal hold", "legal hold")] += 1
            continue
        verdict = rules.judge(
            rule=rules.rule_for(purposes[item.purpose], item.category),
            collected_at=item.collected_at,
            relationship_ended_at=relationship_ended[item.subject_id],
            consent=consents.get((item.subject_id, item.purpose)),
            retained_until=item.retained_until,
            now=now,
        )
        if verdict.action is None:
            tally.kept[(item.purpose, item.category, verdict.rule, verdict.reason)] += 1
            continue
        tally.actions[(item.purpose, item.category, verdict.action)] += 1
        (doomed if verdict.action == RetentionAction.delete else fading).append(item.id)
        per_subject[(item.subject_id, verdict.action)] += 1
    tally.subjects["scanned"] += len(page)
    tally.subjects["held"] += len(held)

    if not run.dry_run:
        await subjects.delete_items(session, doomed)
        await subjects.anonymize_items(session, fading)
    # Of whom nothing identifying is left, once the relationship has ended (or the subject was erased).
    candidates = [
        row.id
        for row in page
        if row.id not in held
        and (row.relationship_ended_at is not None or row.status == SubjectStatus.erased)
    ]
    remaining = (
        await subjects.still_identifiable(session, candidates)
        if not run.dry_run
        else {item.subject_id for item in items if item.id not in set(doomed) | set(fading)}
    )
    vanishing = [subject_id for subject_id in candidates if subject_id not in remaining]
    tally.subjects["anonymized"] += len(vanishing)
    if not run.dry_run:
        for subject_id in vanishing:
            await erasure.anonymize(session, subject_id)
        await audit.record_many(
            session,
            SWEEPER,
            sorted(
                [
                    (
                        subject_id,
                        f"retention.items_{'deleted' if action == 'delete' else 'anonymized'}",
                        f"{count} item{'' if count == 1 else 's'}",
                    )
                    for (subject_id, action), count in per_subject.items()
                ]
                + [(subject_id, "retention.subject_anonymized", None) for subject_id in vanishing],
                key=lambda e: str(e[0]),
            ),
        )

    await repository.update_run(
        session,
        run.id,
        cursor=str(ids[-1]),
        updated_at=utc_now(),
        subjects_scanned=run.subjects_scanned + len(page),
        items_scanned=run.items_scanned + len(items),
        report=tally.as_report(),
    )
    return len(page) == batch_size


async def _purge(session: AsyncSession, *, dry_run: bool) -> dict[str, int]:
    """Records past their windows: idempotency keys, login attempts and codes, the privacy center's ended
    sessions, and the evidence of visitors'
    cookie choices (the `consent_records` purpose's rule). A dry run counts them in a savepoint that it rolls
    back."""
    ttl = timedelta(hours=runtime.of(session).settings.idempotency_ttl_hours)
    async with savepoint(session, keep=not dry_run):
        return {
            "idempotency_keys": await idempotency.purge_expired(session, ttl=ttl),
            **await auth.purge_expired_logins(session),
            "privacy_center_sessions": await privacy_center.purge_expired(session),
            "visitor_consent_events": await visitors.purge_expired_evidence(session),
        }
