"""The retention sweep: walks the subjects in batches, each batch its own transaction with the run's progress,
deleting or anonymizing what has expired and anonymizing subjects of whom nothing identifying is left.

Bounded memory (one batch at a time), safe to interrupt and to run again (what is done stays done; what is
not is found again), and short transactions, so that it never holds up the API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import runtime
from app.audit import service as audit
from app.auth import service as auth
from app.auth.principals import Principal
from app.breaches import service as breaches
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
from app.retention.lock import RunLock
from app.retention.models import RetentionRun
from app.retention.schemas import RunStatus
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.visitors import service as visitors

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A dry run that has not moved for this long is no longer running (its process stopped).
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


# The run lock of each real run this process started and has not executed yet: start() takes it, execute()
# carries it and releases it when the run ends (or takes it, for a run started elsewhere).
_held: dict[uuid.UUID, tuple[RunLock, float]] = {}
# A start whose transaction never committed leaves its lock here with no run to execute: let go of it after.
_ABANDONED_AFTER = 60.0


class RunUnderWay(Conflict):
    title = "A retention run is already under way"


async def _take_lock(session: AsyncSession) -> RunLock:
    for run_id, (held, since) in list(_held.items()):
        if time.monotonic() - since > _ABANDONED_AFTER and await repository.get(session, run_id) is None:
            _held.pop(run_id, None)
            await held.release()
    bind = session.bind
    assert isinstance(bind, AsyncEngine), "the service's sessions are made bound to its engine"
    lock = await RunLock.take(bind)
    if lock is None:
        busy = await repository.running(session)
        raise RunUnderWay(
            "A retention run is already under way" + (f" (run {busy})" if busy else ""),
            run_id=str(busy) if busy else None,
        )
    return lock


async def start(session: AsyncSession, *, dry_run: bool, actor: Principal) -> RetentionRun:
    """A new run (not yet executing), in the caller's transaction. One real run at a time: it takes the run
    lock (app.retention.lock) for as long as it runs, or is refused (409) while another holds it. A real run
    still marked running that nobody holds the lock for died with its process: it is marked interrupted, and
    the new run resumes from its cursor, carrying its counts and report on. Dry runs take no lock (they
    change nothing); one that stopped moving for STALE is marked interrupted."""
    await transaction(session)
    now = utc_now()
    await repository.interrupt_stale_dry_runs(session, quiet_since=now - STALE, at=now)
    lock = None if dry_run else await _take_lock(session)
    try:
        run_id = uuid.uuid4()
        dead = [] if lock is None else await repository.orphaned(session)
        for orphan in dead:
            await repository.update_run(
                session,
                orphan.id,
                status=RunStatus.interrupted,
                finished_at=now,
                error=f"its process stopped; resumed by run {run_id}"[:300],
            )
        resumed = dead[0] if dead else None
        if resumed is not None:
            log.warning(
                "resuming retention run %s from its cursor (its process stopped)",
                resumed.id,
                extra={"run_id": str(run_id), "resumed_from": str(resumed.id), "cursor": resumed.cursor},
            )
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
                "cursor": resumed.cursor if resumed else None,
                "subjects_scanned": resumed.subjects_scanned if resumed else 0,
                "items_scanned": resumed.items_scanned if resumed else 0,
                "report": dict(resumed.report) if resumed else {},
                "error": None,
                "resumed_from": resumed.id if resumed else None,
            },
        )
        await audit.record(session, actor, "retention.run_started", target=str(run_id))
        run = await get(session, run_id)
    except BaseException:
        if lock is not None:
            await lock.release()
        raise
    if lock is not None:
        _held[run_id] = (lock, time.monotonic())
    return run


async def release(run_id: uuid.UUID) -> None:
    """Let go of a started run's lock without executing it (its start was not committed)."""
    held = _held.pop(run_id, None)
    if held is not None:
        await held[0].release()


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
    """Carry the run through every batch, each its own transaction, holding the run lock throughout (a real
    run), then let go of it. On failure the run is marked failed; what was committed stays."""
    held = _held.pop(run_id, None)
    lock = held[0] if held else None
    try:
        async with sessions() as session:
            run = await get(session, run_id)
            if lock is None and not run.dry_run and run.status == RunStatus.running:
                lock = await _take_lock(session)  # started by another process, or its lock released
        return await _execute(sessions, run_id, batch_size, lock)
    finally:
        if lock is not None:
            await lock.release()


async def _execute(
    sessions: async_sessionmaker[AsyncSession], run_id: uuid.UUID, batch_size: int, lock: RunLock | None
) -> RetentionRun:
    try:
        while True:
            if lock is not None:
                await lock.check()
            async with unit_of_work(sessions) as session:
                run = await get(session, run_id)
                if run.status != RunStatus.running:
                    return run
                more = await _batch(session, run, batch_size)
                pause = runtime.of(session).settings.retention_pause_seconds
            if not more:
                break
            if pause:
                await asyncio.sleep(pause)
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
            "breaches": await breaches.purge_expired(session),  # five years after closing
        }
