"""Legal holds (GDPR Art. 17(3)(e)): while one is active, neither retention nor erasure touches the
subject."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.time import utc_now
from app.holds import repository
from app.holds.models import LegalHold
from app.holds.schemas import HoldCreate, HoldRead
from app.subjects import service as subjects


class HoldNotFound(NotFound):
    title = "Legal hold not found"


class SubjectHeld(Conflict):
    title = "The subject is under a legal hold"


def render(hold: LegalHold) -> HoldRead:
    active = hold.lifted_at is None and (hold.ends_at is None or hold.ends_at > utc_now())
    return HoldRead(**{k: getattr(hold, k) for k in HoldRead.model_fields if k != "active"}, active=active)


async def place(
    session: AsyncSession, subject_id: uuid.UUID, data: HoldCreate, *, actor: Principal
) -> LegalHold:
    subject = await subjects.reach(session, subject_id, actor)
    now = utc_now()
    if data.ends_at is not None and data.ends_at <= now:
        raise Unprocessable("A hold must end in the future", loc=["body", "ends_at"])
    await transaction(session)
    hold_id = uuid.uuid4()
    await repository.insert(
        session,
        {
            "id": hold_id,
            "subject_id": subject.id,
            "reason": data.reason,
            "placed_at": now,
            "placed_by": actor.sub,
            "ends_at": data.ends_at,
            "lifted_at": None,
            "lifted_by": None,
            "lift_reason": None,
        },
    )
    await audit.record(session, actor, "legal_hold.placed", subject_id=subject.id, target=str(hold_id))
    return await get(session, hold_id)


async def lift(
    session: AsyncSession, hold_id: uuid.UUID, reason: str | None, *, actor: Principal
) -> LegalHold:
    await transaction(session)
    hold = await repository.get(session, hold_id, lock=True)
    if hold is None:
        raise HoldNotFound("No legal hold with this id")
    if hold.lifted_at is not None:
        raise Conflict("The hold is already lifted")
    await repository.lift(session, hold.id, lifted_at=utc_now(), lifted_by=actor.sub, lift_reason=reason)
    await audit.record(session, actor, "legal_hold.lifted", subject_id=hold.subject_id, target=str(hold.id))
    return await get(session, hold.id)


async def get(session: AsyncSession, hold_id: uuid.UUID) -> LegalHold:
    hold = await repository.get(session, hold_id)
    if hold is None:
        raise HoldNotFound("No legal hold with this id")
    return hold


async def list_holds(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[LegalHold], str | None]:
    return await repository.list_holds(
        session, subject_id=subject_id, active=active, now=utc_now(), limit=limit, cursor=cursor
    )


async def held(session: AsyncSession, subject_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, LegalHold]:
    """The active hold of each of these subjects that has one."""
    ids = list(subject_ids)
    if not ids:
        return {}
    return {hold.subject_id: hold for hold in await repository.active_holds(session, ids, utc_now())}


async def refuse_if_held(session: AsyncSession, subject_id: uuid.UUID, what: str) -> None:
    hold = (await held(session, [subject_id])).get(subject_id)
    if hold is not None:
        until = f" until {hold.ends_at.isoformat()}" if hold.ends_at else ""
        raise SubjectHeld(
            f"{what} is not possible: the subject is under a legal hold since "
            f"{hold.placed_at.date().isoformat()}{until} ({hold.reason})",
            hold_id=str(hold.id),
        )
