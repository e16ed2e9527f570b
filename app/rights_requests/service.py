"""Rights requests: filing, the statutory deadline, the state machine, and carrying out what is granted.

received → verified → in_progress → completed; any open state → rejected (with a reason); `extend` (once,
with a reason, before the first deadline) gives two further months. Every move is in the history.

Filing is one read and one write, like a consent: the read gives the subject's status and address and the
head of its audit chain; the request, its first history entry, its announcement and its audit event are
written in one statement guarded by that chain (audit.append), read and tried again if it moved.

A person who is not registered files through the privacy center once they have proved their address
(`file_unregistered`): matched to no subject, the request carries that address (`requester_email`), and its
audit events are on the global chain. Completing it is the answer "we hold no personal data about you":
nothing is carried out, and it has no package."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.catalog import service as catalog
from app.consent import service as consent
from app.consent.schemas import ConsentMethod
from app.core.contacts import normalize_email
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.time import add_calendar_months, rfc3339, utc_now
from app.decisions import service as decisions
from app.disclosures import service as disclosures
from app.erasure import service as erasure
from app.marketing import service as marketing
from app.marketing.schemas import OptOutSource
from app.processors.schemas import TaskType
from app.rights_requests import notices, repository
from app.rights_requests import package as packages
from app.rights_requests.models import RightsRequest as RightsRequest  # re-exported for other domains
from app.rights_requests.models import RightsRequestEvent
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
from app.subjects.schemas import SubjectStatus
from app.webhooks import service as outbox

MOVES = {
    Action.verify: (RequestStatus.received, RequestStatus.verified),
    Action.start: (RequestStatus.verified, RequestStatus.in_progress),
    Action.complete: (RequestStatus.in_progress, RequestStatus.completed),
}
FILED = "filed"
MAX_EMAIL = 320  # rights_request.requester_email
# The history's reason when an unmatched request is completed and staff gave none.
NO_DATA_REASON = "No personal data about this person is held"
EVENT_NAMES = {
    FILED: "received",
    Action.verify: "verified",
    Action.start: "started",
    Action.complete: "completed",
    Action.reject: "rejected",
    Action.extend: "extended",
}


class RequestNotFound(NotFound):
    title = "Rights request not found"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, when not through /v1 or the privacy center (`name`, e.g. "opendsr"), the
    sender's own id for it (unique per origin), and where its status changes go (a list of {"url",
    "endpoint_id"})."""

    name: str
    external_id: str
    status_callbacks: list[dict[str, str]] | None = None


# Called, in the mover's transaction, after every move of a request that has an origin: how another door
# (app.opendsr) tells its sender of status changes. Registered once, at import, by that door's service.
StatusListener = Callable[[AsyncSession, RightsRequest], Awaitable[None]]
_status_listeners: list[StatusListener] = []


def on_status_change(listener: StatusListener) -> None:
    if listener not in _status_listeners:
        _status_listeners.append(listener)


async def find_external(session: AsyncSession, origin: str, external_id: str) -> RightsRequest | None:
    """The request that came through `origin` under the sender's id `external_id`, if any."""
    return await repository.by_external_id(session, origin, external_id)


class IllegalTransition(Conflict):
    title = "This action is not allowed in the request's current state"


def _announcement(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": str(request["id"]),
        "subject_id": str(request["subject_id"]) if request["subject_id"] else None,
        "type": request["type"],
        "status": request["status"],
        "due_at": rfc3339(request["due_at"]),
    }


def _entry(
    request_id: uuid.UUID,
    caller: Principal,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "request_id": request_id,
        "at": utc_now(),
        "actor": caller.sub,
        "role": caller.role,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "reason": reason,
    }


async def file(
    session: AsyncSession, data: RequestCreate, *, caller: Principal
) -> tuple[RequestRead, list[Mail]]:
    """File a request (see the module's docstring); the subject is mailed that it was received."""
    subject_id = data.subject_id or caller.subject_id
    if subject_id is None:
        raise Unprocessable("Staff must name the subject", loc=["body", "subject_id"])
    subjects.check_reach(subject_id, caller)
    return await _file(session, data, caller=caller, subject_id=subject_id)


async def file_unregistered(
    session: AsyncSession, email: str, data: RequestCreate, *, caller: Principal, origin: Origin | None = None
) -> tuple[RequestRead, list[Mail]]:
    """File a request for whoever holds `email`, which they have proved (the privacy center's one-time code).
    A subject registered under that address (and not erased) gets the request as if it had filed it; anyone
    else gets a request matched to no subject, which carries the address instead (`requester_email`), and
    whose audit event is on the global chain. `data.subject_id` is ignored. The address is mailed that the
    request was received. `origin`: the door it came through, when not ours (OpenDSR)."""
    address = normalize_email(email)
    if not address or len(address) > MAX_EMAIL:
        raise Unprocessable("Not a valid e-mail address", loc=["body", "email"])
    subject = await subjects.find_by_email(session, address)
    if subject is not None and subject.status != SubjectStatus.erased:
        return await _file(session, data, caller=caller, subject_id=subject.id, origin=origin)
    return await _file(session, data, caller=caller, requester_email=address, origin=origin)


async def _file(
    session: AsyncSession,
    data: RequestCreate,
    *,
    caller: Principal,
    subject_id: uuid.UUID | None = None,
    requester_email: str | None = None,
    origin: Origin | None = None,
) -> tuple[RequestRead, list[Mail]]:
    """File for `subject_id` (reachable by the caller), or, without one, for `requester_email`, matched to
    no subject. One read (the subject and the head of its audit chain; the global chain's head for an
    unmatched request) and one guarded write, tried again if the chain moved."""
    chain = audit.chain_of(subject_id)

    async def attempt() -> tuple[RequestRead, list[Mail]] | None:
        if subject_id is None:
            link, address = await audit.link_of(session, None), requester_email
        else:
            facts = await repository.filing_facts(session, subject_id, chain)
            if facts.subject_status is None:
                raise subjects.SubjectNotFound("Subject not found")
            if facts.subject_status == SubjectStatus.erased:
                raise Conflict("The subject is erased")
            link, address = audit.link_at(subject_id, facts.chain_seq, facts.chain_hash), facts.email
        if data.type == RequestType.objection and data.purpose is None:
            raise Unprocessable("An objection names the purpose it objects to", loc=["body", "purpose"])
        if data.purpose is not None:
            await catalog.require_purpose(session, data.purpose, loc=["body", "purpose"])
        received_at = utc_now()
        request: dict[str, Any] = {
            "id": uuid.uuid4(),
            "subject_id": subject_id,
            "requester_email": None if subject_id is not None else requester_email,
            "type": data.type,
            "status": RequestStatus.received,
            "details": data.details,
            "purpose": data.purpose,
            "received_at": received_at,
            "due_at": add_calendar_months(received_at, 1),
            "extended": False,
            "filed_by": caller.key,
            "closed_at": None,
            "rejection_reason": None,
            "origin": origin.name if origin else None,
            "external_id": origin.external_id if origin else None,
            "status_callbacks": origin.status_callbacks if origin else None,
        }
        entry = _entry(request["id"], caller, FILED, None, RequestStatus.received)
        announcement = outbox.announce(
            f"rights_request.{EVENT_NAMES[FILED]}", _announcement(request), subject_id=subject_id
        )
        writes = [repository.new_request(request), repository.history_entry(entry), announcement]
        if not await audit.append(
            session, link, caller, f"rights_request.{FILED}", str(request["id"]), writes
        ):
            return None
        filed = RightsRequest.model_construct(**request)
        mails = [notices.received(address, filed)] if address else []
        return render(filed, [RightsRequestEvent.model_construct(**entry)]), mails

    return await audit.until_appended(attempt)


async def get(session: AsyncSession, request_id: uuid.UUID, *, caller: Principal) -> RightsRequest:
    """A request the caller may see: staff any, a subject its own (another's is a 404, like a missing one)."""
    request = await repository.get(session, request_id)
    if request is None or (caller.role == Role.subject and request.subject_id != caller.subject_id):
        raise RequestNotFound("Rights request not found")
    return request


async def list_requests(
    session: AsyncSession,
    *,
    caller: Principal,
    status: RequestStatus | None,
    type_: RequestType | None,
    overdue: bool | None,
    due_within_days: int | None,
    limit: int,
    cursor: str | None,
    unmatched: bool | None = None,
) -> tuple[list[RequestRead], str | None]:
    """Staff: all (`unmatched`: only those matched to no subject, or, false, only those matched to one); a
    subject: its own."""
    now = utc_now()
    requests, next_cursor = await repository.list_requests(
        session,
        subject_id=caller.subject_id if caller.role == Role.subject else None,
        status=status,
        type_=type_,
        overdue_at=now if overdue else None,
        on_time_at=now if overdue is False else None,
        due_before=now + timedelta(days=due_within_days) if due_within_days is not None else None,
        unmatched=unmatched,
        limit=limit,
        cursor=cursor,
    )
    return await _render_all(session, requests), next_cursor


async def _render_all(session: AsyncSession, requests: Sequence[RightsRequest]) -> list[RequestRead]:
    found: dict[uuid.UUID, list[RightsRequestEvent]] = {r.id: [] for r in requests}
    if found:
        for event in await repository.histories(session, list(found)):
            found[event.request_id].append(event)
    return [render(r, found[r.id]) for r in requests]


def render(request: RightsRequest, history: Sequence[RightsRequestEvent]) -> RequestRead:
    complain = (
        RightToComplain(
            sv=notices.COMPLAINT_SV,
            en=notices.COMPLAINT_EN,
            authority="Integritetsskyddsmyndigheten (IMY)",
            website="https://www.imy.se",
        )
        if request.status == RequestStatus.rejected
        else None
    )
    return RequestRead(
        id=request.id,
        subject_id=request.subject_id,
        requester_email=request.requester_email,
        type=request.type,
        status=request.status,
        details=request.details,
        purpose=request.purpose,
        received_at=request.received_at,
        due_at=request.due_at,
        extended=request.extended,
        overdue=request.status in OPEN and request.due_at < utc_now(),
        closed_at=request.closed_at,
        rejection_reason=request.rejection_reason,
        right_to_complain=complain,
        history=[HistoryEntry.model_validate(e) for e in history],
    )


async def read(session: AsyncSession, request_id: uuid.UUID, *, caller: Principal) -> RequestRead:
    return (await _render_all(session, [await get(session, request_id, caller=caller)]))[0]


async def act(
    session: AsyncSession, request_id: uuid.UUID, data: ActionRequest, *, caller: Principal
) -> tuple[RequestRead, list[Mail]]:
    """Move the request on (carrying it out when it completes), in one transaction; the mails to send once it
    is committed. A request matched to no subject is answered by completing it: no personal data is held
    about the person, and nothing is carried out."""
    await transaction(session)
    request = await repository.get(session, request_id, lock=True)
    if request is None:
        raise RequestNotFound("Rights request not found")
    before, reason = request.status, data.reason
    subject: subjects.Subject | None = None
    if request.subject_id is None:
        address = request.requester_email
    else:
        subject = await subjects.reach(session, request.subject_id, caller)
        address = subject.email  # captured first: erasure removes it
    changes: dict[str, Any] = {}
    if data.action == Action.extend:
        if request.status not in OPEN or request.extended:
            raise IllegalTransition("Only an open request can be extended, and only once")
        if utc_now() > request.due_at:
            raise IllegalTransition("The first deadline has passed; it can no longer be extended")
        changes = {"extended": True, "due_at": add_calendar_months(request.received_at, 3)}
    elif data.action == Action.reject:
        if request.status not in OPEN:
            raise IllegalTransition(f"A {request.status} request cannot be rejected")
        changes = {"status": RequestStatus.rejected, "closed_at": utc_now(), "rejection_reason": data.reason}
    else:
        expected, target = MOVES[data.action]
        if request.status != expected:
            raise IllegalTransition(f"{data.action} needs a {expected} request; this one is {request.status}")
        changes = {"status": target}
        if data.action == Action.complete:
            changes["closed_at"] = utc_now()
            if subject is None:
                reason = reason or NO_DATA_REASON
            else:
                await _carry_out(session, request, subject, caller)
    await repository.update_request(session, request.id, **changes)
    moved = await repository.get(session, request.id)
    assert moved is not None
    await _moved(session, moved, caller, data.action, before, reason)
    mails = [mail for mail in [_notice(address, moved, data.action, data.reason)] if mail is not None]
    return (await _render_all(session, [moved]))[0], mails


def _notice(address: str | None, request: RightsRequest, action: Action, reason: str | None) -> Mail | None:
    if address is None:
        return None
    if action == Action.extend:
        return notices.extended(address, request, reason or "")
    if action == Action.reject:
        return notices.rejected(address, request, reason or "")
    if action == Action.complete:
        if request.subject_id is None:  # the answer for a person about whom nothing is held
            return notices.no_data(address, request)
        return notices.completed(address, request)
    return None


async def _moved(
    session: AsyncSession,
    request: RightsRequest,
    caller: Principal,
    action: Action,
    from_status: str,
    reason: str | None,
) -> None:
    """The move's history entry, announcement and audit event, in the caller's transaction."""
    await repository.add_history(
        session, _entry(request.id, caller, action, from_status, request.status, reason)
    )
    values = {
        "id": request.id,
        "subject_id": request.subject_id,
        "type": request.type,
        "status": request.status,
        "due_at": request.due_at,
    }
    await outbox.emit(
        session, f"rights_request.{EVENT_NAMES[action]}", _announcement(values), subject_id=request.subject_id
    )
    await audit.record(
        session, caller, f"rights_request.{action}", subject_id=request.subject_id, target=str(request.id)
    )
    if request.origin is not None:
        for listener in _status_listeners:
            await listener(session, request)


async def _carry_out(
    session: AsyncSession, request: RightsRequest, subject: subjects.Subject, caller: Principal
) -> None:
    """What completing a request does, in the same transaction as the completion itself."""
    subject_id = subject.id
    due = request.due_at  # the recipients' tasks share the request's deadline
    if request.type == RequestType.erasure:
        await erasure.erase(session, subject_id, actor=caller, due_at=due)
    elif request.type == RequestType.restriction:
        await subjects.set_restricted(session, subject_id, True, actor=caller)
        await disclosures.create_recipient_tasks(
            session, subject_id, TaskType.restriction, actor=caller, due_at=due
        )
        await outbox.emit(
            session, "subject.restricted", {"subject_id": str(subject_id)}, subject_id=subject_id
        )
    elif request.type == RequestType.rectification:
        changes = await subjects.changed_since(session, subject_id, request.received_at)
        await disclosures.create_recipient_tasks(
            session, subject_id, TaskType.rectification, actor=caller, due_at=due, changes=changes
        )
    elif request.type == RequestType.objection:
        assert request.purpose is not None
        await decisions.uphold_objection(session, subject_id, request.purpose, actor=caller)
        if request.purpose == marketing.MARKETING_PURPOSE:  # absolute (Art. 21(3)): every channel, for good
            await marketing.opt_out_everywhere(session, subject_id, source=OptOutSource.objection)
            await consent.withdraw_all(
                session,
                subject_id,
                actor=caller,
                method=ConsentMethod.objection,
                purposes={marketing.MARKETING_PURPOSE},
            )
    # access and portability: the package is built from the current data at each download.


async def forget_details(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """A request's details are the subject's own words, and may say anything about them."""
    await repository.forget_details(session, subject_id)


async def lift_restriction(
    session: AsyncSession, subject_id: uuid.UUID, reason: str, *, actor: Principal
) -> subjects.Subject:
    await transaction(session)
    subject = await subjects.set_restricted(session, subject_id, False, actor=actor, reason=reason)
    await outbox.emit(
        session,
        "subject.restriction_lifted",
        {"subject_id": str(subject_id), "reason": reason},
        subject_id=subject_id,
    )
    return subject


class NoPackageYet(Conflict):
    title = "No package for this request"


class NoPersonalData(Conflict):
    title = "No personal data is held about this person"


async def package(session: AsyncSession, request_id: uuid.UUID, *, caller: Principal) -> Package:
    """The register extract of a completed access or portability request, from the data as it is now.
    Every download is audited."""
    await transaction(session)
    request = await get(session, request_id, caller=caller)
    subject_id = request.subject_id
    if subject_id is None:
        raise NoPersonalData(
            "No personal data is held about this person: the request is matched to no subject, so it has no "
            "package"
        )
    if request.type not in (RequestType.access, RequestType.portability):
        raise NoPackageYet("Only access and portability requests have a package")
    if request.status != RequestStatus.completed:
        raise NoPackageYet("The package is available once the request is completed")
    requests = await _render_all(session, await repository.of_subject(session, subject_id))
    built = await packages.build(session, request, requests, caller=caller)
    await audit.record(
        session,
        caller,
        "rights_request.package_downloaded",
        subject_id=subject_id,
        target=str(request.id),
    )
    return built
