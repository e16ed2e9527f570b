"""Rights requests: filing, the statutory deadline, the state machine, and carrying out what is granted.

received → verified → in_progress → completed; any open state → rejected (with a reason); `extend` (once,
with a reason, before the first deadline) gives two further months. Every move is in the history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog import service as catalog
from app.catalog.schemas import LegalBasis
from app.consent import service as consent
from app.consent.schemas import ConsentMethod
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.pagination import paginate
from app.core.security import Principal, Role
from app.core.time import add_calendar_months, end_of_year, utc_now
from app.decisions import service as decisions
from app.disclosures import service as disclosures
from app.holds import service as holds
from app.marketing import service as marketing
from app.processors.schemas import TaskType
from app.rights_requests import notices
from app.rights_requests import package as packages
from app.rights_requests.models import RightsRequest, RightsRequestEvent
from app.rights_requests.package import Package
from app.rights_requests.schemas import (
    OPEN,
    Action,
    ActionRequest,
    HistoryEntry,
    RequestCreate,
    RequestRead,
    RequestStatus,
    RequestType,
    RightToComplain,
)
from app.subjects import service as subjects
from app.subjects.models import Subject
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

MOVES = {Action.verify: (RequestStatus.received, RequestStatus.verified),
         Action.start: (RequestStatus.verified, RequestStatus.in_progress),
         Action.complete: (RequestStatus.in_progress, RequestStatus.completed)}
EVENT_NAMES = {"filed": "received", Action.verify: "verified", Action.start: "started", Action.complete: "completed",
               Action.reject: "rejected", Action.extend: "extended"}
RETENTION_REASON = ("Kept for bookkeeping: Bokföringslagen (1999:1078) 7 kap. 2 § requires accounting records to be "
                    "kept until the end of the seventh year after the calendar year they concern.")


class RequestNotFound(NotFound):
    title = "Rights request not found"


class IllegalTransition(Conflict):
    title = "This action is not allowed in the request's current state"


async def _history(session: AsyncSession, request: RightsRequest, caller: Principal, action: str,
                   from_status: str | None, reason: str | None = None) -> None:
    session.add(RightsRequestEvent(request_id=request.id, at=utc_now(), actor=caller.sub, role=caller.role,
                                   action=action, from_status=from_status, to_status=request.status, reason=reason))
    await session.flush()
    await outbox.emit(session, f"rights_request.{EVENT_NAMES[action]}", {
        "request_id": str(request.id), "subject_id": str(request.subject_id), "type": request.type,
        "status": request.status, "due_at": request.due_at.isoformat()}, subject_id=request.subject_id)
    await audit.record(session, caller, f"rights_request.{action}", subject_id=request.subject_id,
                       target=str(request.id))


async def file(session: AsyncSession, data: RequestCreate, *, caller: Principal) -> tuple[RightsRequest, list[Mail]]:
    subject_id = data.subject_id or caller.subject_id
    if subject_id is None:
        raise Unprocessable("Staff must name the subject", loc=["body", "subject_id"])
    subject = await subjects.reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise Conflict("The subject is erased")
    if data.type == RequestType.objection and data.purpose is None:
        raise Unprocessable("An objection names the purpose it objects to", loc=["body", "purpose"])
    if data.purpose is not None:
        await catalog.require_purpose(session, data.purpose, loc=["body", "purpose"])
    received_at = utc_now()
    request = RightsRequest(subject_id=subject.id, type=data.type, status=RequestStatus.received, details=data.details,
                            purpose=data.purpose, received_at=received_at,
                            due_at=add_calendar_months(received_at, 1), filed_by=caller.key)
    session.add(request)
    await session.flush()
    await _history(session, request, caller, "filed", None)
    return request, [notices.received(subject.email, request)] if subject.email else []


async def get(session: AsyncSession, request_id: uuid.UUID, *, caller: Principal) -> RightsRequest:
    """A request the caller may see: staff any, a subject its own (another's is a 404, like a missing one)."""
    request = await session.get(RightsRequest, request_id)
    if request is None or (caller.role == Role.subject and request.subject_id != caller.subject_id):
        raise RequestNotFound("Rights request not found")
    return request


async def list_requests(
    session: AsyncSession, *, caller: Principal, status: RequestStatus | None, type_: RequestType | None,
    overdue: bool | None, due_within_days: int | None, limit: int, cursor: str | None,
) -> tuple[Sequence[RightsRequest], str | None]:
    statement = select(RightsRequest)
    if caller.role == Role.subject:
        statement = statement.where(RightsRequest.subject_id == caller.subject_id)
    if status is not None:
        statement = statement.where(RightsRequest.status == status)
    if type_ is not None:
        statement = statement.where(RightsRequest.type == type_)
    now = utc_now()
    if overdue is not None:
        late = RightsRequest.status.in_(OPEN) & (RightsRequest.due_at < now)
        statement = statement.where(late if overdue else ~late)
    if due_within_days is not None:
        statement = statement.where(RightsRequest.status.in_(OPEN),
                                    RightsRequest.due_at <= now + timedelta(days=due_within_days))
    return await paginate(session, statement, order=(RightsRequest.received_at, RightsRequest.id), limit=limit,
                          cursor=cursor, key_type=uuid.UUID)


async def histories(session: AsyncSession, requests: Sequence[RightsRequest]) -> dict[uuid.UUID, list[RightsRequestEvent]]:
    found: dict[uuid.UUID, list[RightsRequestEvent]] = {r.id: [] for r in requests}
    if found:
        rows = await session.execute(select(RightsRequestEvent).where(RightsRequestEvent.request_id.in_(found))
                                     .order_by(RightsRequestEvent.at, RightsRequestEvent.id))
        for event in rows.scalars():
            found[event.request_id].append(event)
    return found


def render(request: RightsRequest, history: Sequence[RightsRequestEvent]) -> RequestRead:
    complain = RightToComplain(sv=notices.COMPLAINT_SV, en=notices.COMPLAINT_EN, authority="Integritetsskyddsmyndigheten (IMY)",
                               website="https://www.imy.se") if request.status == RequestStatus.rejected else None
    return RequestRead(
        id=request.id, subject_id=request.subject_id, type=request.type, status=request.status,
        details=request.details, purpose=request.purpose, received_at=request.received_at, due_at=request.due_at,
        extended=request.extended, overdue=request.status in OPEN and request.due_at < utc_now(),
        closed_at=request.closed_at, rejection_reason=request.rejection_reason, right_to_complain=complain,
        history=[HistoryEntry.model_validate(e) for e in history])


async def read(session: AsyncSession, request: RightsRequest) -> RequestRead:
    return render(request, (await histories(session, [request]))[request.id])


async def act(session: AsyncSession, keys: Keys, settings: Settings, request_id: uuid.UUID, data: ActionRequest, *,
              caller: Principal) -> tuple[RightsRequest, list[Mail]]:
    request = await session.get(RightsRequest, request_id, with_for_update=True)
    if request is None:
        raise RequestNotFound("Rights request not found")
    before = request.status
    subject = await session.get(Subject, request.subject_id)
    address = subject.email if subject else None  # captured first: erasure removes it
    mails: list[Mail] = []
    if data.action == Action.extend:
        if request.status not in OPEN or request.extended:
            raise IllegalTransition("Only an open request can be extended, and only once")
        if utc_now() > request.due_at:
            raise IllegalTransition("The first deadline has passed; it can no longer be extended")
        request.extended, request.due_at = True, add_calendar_months(request.received_at, 3)
        mails += [notices.extended(address, request, data.reason)] if address else []
    elif data.action == Action.reject:
        if request.status not in OPEN:
            raise IllegalTransition(f"A {request.status} request cannot be rejected")
        request.status, request.closed_at, request.rejection_reason = RequestStatus.rejected, utc_now(), data.reason
        mails += [notices.rejected(address, request, data.reason)] if address else []
    else:
        expected, target = MOVES[data.action]
        if request.status != expected:
            raise IllegalTransition(f"{data.action} needs a {expected} request; this one is {request.status}")
        request.status = target
        if data.action == Action.complete:
            request.closed_at = utc_now()
            await _carry_out(session, keys, settings, request, caller)
            mails += [notices.completed(address, request)] if address else []
    await session.flush()
    await _history(session, request, caller, data.action, before, data.reason)
    return request, mails


async def _carry_out(session: AsyncSession, keys: Keys, settings: Settings, request: RightsRequest,
                     caller: Principal) -> None:
    """What completing a request does, in the same transaction as the completion itself."""
    subject_id = request.subject_id
    if request.type == RequestType.erasure:
        await holds.refuse_if_held(session, subject_id, "Erasure")
        await erase(session, keys, settings, subject_id, actor=caller)
    elif request.type == RequestType.restriction:
        await subjects.set_restricted(session, subject_id, True, actor=caller)
        await disclosures.create_recipient_tasks(session, subject_id, TaskType.restriction, actor=caller)
        await outbox.emit(session, "subject.restricted", {"subject_id": str(subject_id)}, subject_id=subject_id)
    elif request.type == RequestType.rectification:
        await disclosures.create_recipient_tasks(session, subject_id, TaskType.rectification, actor=caller)
    elif request.type == RequestType.objection:
        assert request.purpose is not None
        await decisions.uphold_objection(session, subject_id, request.purpose, actor=caller)
        if request.purpose == marketing.MARKETING_PURPOSE:  # absolute (Art. 21(3)): every channel, for good
            await marketing.opt_out_everywhere(session, subject_id, source="objection")
            await consent.withdraw_all(session, keys, settings, subject_id, actor=caller,
                                       method=ConsentMethod.objection, purposes={marketing.MARKETING_PURPOSE})
    # access and portability: the package is built from the current data at each download.


async def erase(session: AsyncSession, keys: Keys, settings: Settings, subject_id: uuid.UUID, *,
                actor: Principal) -> None:
    """The right to be forgotten, in the caller's transaction: all of it happens, or none of it."""
    await consent.withdraw_all(session, keys, settings, subject_id, actor=actor, method=ConsentMethod.erasure)
    await consent.strip_evidence(session, subject_id)
    await marketing.opt_out_everywhere(session, subject_id, source="erasure")  # the suppression entry
    keep = await catalog.purposes_with_basis(session, LegalBasis.legal_obligation)
    _, deleted, kept = await subjects.erase(
        session, subject_id, keep_purposes=keep, retention_reason=RETENTION_REASON,
        retained_until=lambda collected_at: end_of_year(collected_at.year + 7))
    await forget_details(session, subject_id)
    await disclosures.create_recipient_tasks(session, subject_id, TaskType.erasure, actor=actor)
    await outbox.emit(session, "subject.erased", {"subject_id": str(subject_id), "items_deleted": deleted,
                                                  "items_retained": kept}, subject_id=subject_id)
    await audit.record(session, actor, "subject.erased", subject_id=subject_id)


async def forget_details(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """A request's details are the subject's own words, and may say anything about them."""
    await session.execute(update(RightsRequest).where(RightsRequest.subject_id == subject_id).values(details=None))


async def lift_restriction(session: AsyncSession, subject_id: uuid.UUID, reason: str, *, actor: Principal) -> Subject:
    subject = await subjects.set_restricted(session, subject_id, False, actor=actor, reason=reason)
    await outbox.emit(session, "subject.restriction_lifted", {"subject_id": str(subject_id), "reason": reason},
                      subject_id=subject_id)
    return subject


class NoPackageYet(Conflict):
    title = "No package for this request"


async def package(session: AsyncSession, keys: Keys, settings: Settings, request_id: uuid.UUID, *,
                  caller: Principal) -> Package:
    """The register extract of a completed access or portability request, from the data as it is now.
    Every download is audited."""
    request = await get(session, request_id, caller=caller)
    if request.type not in (RequestType.access, RequestType.portability):
        raise NoPackageYet("Only access and portability requests have a package")
    if request.status != RequestStatus.completed:
        raise NoPackageYet("The package is available once the request is completed")
    requests = (await session.execute(select(RightsRequest).where(RightsRequest.subject_id == request.subject_id)
                                      .order_by(RightsRequest.received_at))).scalars().all()
    found = await histories(session, requests)
    built = await packages.build(session, keys, settings, request, [render(r, found[r.id]) for r in requests],
                                 caller=caller)
    await audit.record(session, caller, "rights_request.package_downloaded", subject_id=request.subject_id,
                       target=str(request.id))
    return built
