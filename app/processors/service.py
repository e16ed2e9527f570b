"""The processor registry and the tasks addressed to processors (GDPR Art. 19)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal, Role
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.time import add_calendar_months, rfc3339, utc_now
from app.processors import repository
from app.processors.countries import is_third_country
from app.processors.models import Processor
from app.processors.models import ProcessorTask as ProcessorTask  # re-exported for other domains
from app.processors.schemas import (
    ProcessorCreate,
    ProcessorEnd,
    ProcessorRead,
    ProcessorUpdate,
    RecipientRead,
    SubProcessor,
    TaskDetails,
    TaskRead,
    TaskStatus,
    TaskType,
    Transfer,
    TransferRead,
    transfer_of,
)
from app.webhooks import service as webhooks
from app.webhooks.schemas import EventType


class ProcessorNotFound(NotFound):
    title = "Processor not found"


class TaskNotFound(NotFound):
    title = "Processor task not found"


class ProcessorEnded(Conflict):
    title = "The processor has ended"


_CLOCK_SKEW = timedelta(minutes=5)
_AGREEMENT = ("tia_reference", "dpa_signed_on", "dpa_expires_on")


def transfer_safeguarded(processor: Processor) -> bool:
    """Whether data may go to it as far as chapter V goes: it is in the EU/EEA, or a mechanism is recorded."""
    return not is_third_country(processor.country) or processor.transfer_mechanism is not None


_DEROGATION_POINT = {
    "explicit_consent": ("(a)", "uttryckligt samtycke", "explicit consent"),
    "contract_with_subject": ("(b)", "avtal med den registrerade", "a contract with the data subject"),
    "contract_in_subject_interest": (
        "(c)",
        "avtal i den registrerades intresse",
        "a contract in the data subject's interest",
    ),
    "public_interest": ("(d)", "viktiga skäl av allmänt intresse", "important reasons of public interest"),
    "legal_claims": ("(e)", "rättsliga anspråk", "legal claims"),
    "vital_interests": ("(f)", "grundläggande intressen", "vital interests"),
    "public_register": ("(g)", "offentligt register", "a public register"),
    "compelling_legitimate_interests": (
        "andra stycket",
        "tvingande berättigade intressen",
        "compelling legitimate interests",
    ),
}


def safeguard(processor: Processor, language: str = "en") -> str:
    """The transfer's safeguard in words, in Swedish or English (the record of processing, the notice)."""
    sv = language == "sv"
    mechanism, reference = processor.transfer_mechanism, processor.transfer_reference
    if not is_third_country(processor.country):
        return "Inom EU/EES" if sv else "Within the EU/EEA"
    if mechanism == "adequacy_decision":
        return f"{'Beslut om adekvat skyddsnivå' if sv else 'Adequacy decision'} (Art. 45): {reference}"
    if mechanism == "scc":
        signed = processor.scc_signed_on.isoformat() if processor.scc_signed_on else "?"
        text = (
            f"EU-kommissionens standardavtalsklausuler, modul {processor.scc_module}, undertecknade {signed}"
            if sv
            else f"The Commission's standard contractual clauses, module {processor.scc_module}, "
            f"signed {signed}"
        )
        return f"{text} (Art. 46(2)(c))" + (f", {reference}" if reference else "")
    if mechanism == "bcr":
        return (
            f"{'Bindande företagsbestämmelser' if sv else 'Binding corporate rules'} (Art. 47): {reference}"
        )
    if mechanism == "derogation":
        point, words_sv, words_en = _DEROGATION_POINT[processor.derogation or ""]
        return (
            f"Undantag enligt art. 49.1 {point}: {words_sv}"
            if sv
            else f"Derogation, Art. 49(1) {point}: {words_en}"
        )
    return "Ingen skyddsåtgärd registrerad" if sv else "No safeguard recorded: disclosures to it are flagged"


def transfers_of(registry: Sequence[Processor], language: str = "en") -> list[TransferRead]:
    """Every transfer to a third country the registry holds: each processor outside the EU/EEA, and each
    sub-processor outside it (an onward transfer, under the processor's agreement and safeguards)."""
    found = []
    for p in registry:
        if is_third_country(p.country):
            found.append(
                TransferRead(
                    processor_id=p.id,
                    recipient=p.name,
                    country=p.country,
                    via=None,
                    mechanism=p.transfer_mechanism,
                    safeguard=safeguard(p, language),
                    tia_reference=p.tia_reference,
                    ended_at=p.ended_at,
                )
            )
        for sub in p.sub_processors or []:
            if is_third_country(sub["country"]):
                onward = (
                    "Vidareöverföring enligt biträdets avtal"
                    if language == "sv"
                    else "Onward transfer under the processor's agreement"
                )
                found.append(
                    TransferRead(
                        processor_id=p.id,
                        recipient=sub["name"],
                        country=sub["country"],
                        via=p.name,
                        mechanism=p.transfer_mechanism,
                        safeguard=f"{onward}; {safeguard(p, language)}"
                        if is_third_country(p.country)
                        else onward,
                        tia_reference=p.tia_reference,
                        ended_at=p.ended_at,
                    )
                )
    return found


async def notice_transfers(session: AsyncSession, language: str) -> tuple[str, str]:
    """The privacy notice's generated part on transfers (Art. 13(1)(f), 14(1)(f)): (title, body) from the live
    registry, processors that have ended left out."""
    sv = language == "sv"
    live = [t for t in transfers_of(await all_processors(session), language) if t.ended_at is None]
    title = "Överföringar till länder utanför EU/EES" if sv else "Transfers outside the EU/EEA"
    if not live:
        body = (
            "Vi för inte över personuppgifter till länder utanför EU/EES."
            if sv
            else "We do not transfer personal data to countries outside the EU/EEA."
        )
        return title, body
    lines = [
        f"- {t.recipient} ({t.country})"
        + (f", {'för' if sv else 'for'} {t.via}" if t.via else "")
        + f": {t.safeguard}."
        for t in live
    ]
    ending = (
        "Kontakta oss om du vill ha en kopia av skyddsåtgärderna."
        if sv
        else "Contact us for a copy of the safeguards."
    )
    intro = (
        "Dessa mottagare finns utanför EU/EES. Så skyddas uppgifterna:"
        if sv
        else "These recipients are outside the EU/EEA. This is how the data is protected:"
    )
    return title, "\n".join([intro, *lines, ending])


def _transfer_columns(transfer: Transfer | None) -> dict[str, Any]:
    return {
        "transfer_mechanism": transfer.mechanism if transfer else None,
        "scc_module": transfer.scc_module if transfer else None,
        "scc_signed_on": transfer.scc_signed_on if transfer else None,
        "derogation": transfer.derogation if transfer else None,
        "transfer_reference": transfer.reference if transfer else None,
    }


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """The registry's rules across fields, on the processor as it would stand (creation or edit): 422 on the
    field at fault."""
    if values.get("transfer_mechanism") is not None and not is_third_country(values["country"]):
        raise Unprocessable(
            "A processor in the EU/EEA needs no transfer mechanism: remove `transfer` or correct `country`",
            loc=["body", "transfer"],
        )
    signed, expires = values.get("dpa_signed_on"), values.get("dpa_expires_on")
    if signed is not None and expires is not None and expires <= signed:
        raise Unprocessable("The agreement must expire after it was signed", loc=["body", "dpa_expires_on"])
    return values


def recipient(processor: Processor) -> RecipientRead:
    return RecipientRead(
        id=processor.id,
        name=processor.name,
        country=processor.country,
        third_country=is_third_country(processor.country),
    )


def render(processor: Processor, webhook_url: str | None) -> ProcessorRead:
    return ProcessorRead(
        **recipient(processor).model_dump(),
        dpa_reference=processor.dpa_reference,
        contact_email=processor.contact_email,
        webhook_url=webhook_url,
        created_at=processor.created_at,
        transfer=transfer_of(processor.model_dump()),
        transfer_safeguarded=transfer_safeguarded(processor),
        tia_reference=processor.tia_reference,
        sub_processors=[SubProcessor.model_validate(s) for s in processor.sub_processors or []],
        dpa_signed_on=processor.dpa_signed_on,
        dpa_expires_on=processor.dpa_expires_on,
        updated_at=processor.updated_at,
        ended_at=processor.ended_at,
        end_reason=processor.end_reason,
    )


async def create_processor(
    session: AsyncSession, data: ProcessorCreate, *, actor: Principal
) -> tuple[Processor, str | None]:
    """Register a processor; with a webhook URL, also its endpoint for its tasks (secret returned once)."""
    await transaction(session)
    processor_id = uuid.uuid4()
    await repository.insert_processor(
        session,
        _checked(
            {
                "id": processor_id,
                "name": data.name,
                "dpa_reference": data.dpa_reference,
                "country": data.country,
                "contact_email": data.contact_email,
                "created_at": utc_now(),
                **_transfer_columns(data.transfer),
                "tia_reference": data.tia_reference,
                "sub_processors": [s.model_dump(mode="json") for s in data.sub_processors or []],
                "dpa_signed_on": data.dpa_signed_on,
                "dpa_expires_on": data.dpa_expires_on,
                "updated_at": None,
                "ended_at": None,
                "end_reason": None,
            }
        ),
    )
    secret = None
    if data.webhook_url is not None:
        _, secret = await webhooks.create_endpoint(
            session,
            url=data.webhook_url,
            processor_id=processor_id,
            actor=actor,
            event_types=[EventType.processor_task_created],
            description=f"Tasks for {data.name}",
            loc=("body", "webhook_url"),
        )
    await audit.record(session, actor, "processor.created", target=str(processor_id))
    return await get_processor(session, processor_id), secret


async def get_processor(session: AsyncSession, processor_id: uuid.UUID, *, lock: bool = False) -> Processor:
    processor = await repository.get_processor(session, processor_id, lock=lock)
    if processor is None:
        raise ProcessorNotFound("No processor with this id")
    return processor


async def update_processor(
    session: AsyncSession, processor_id: uuid.UUID, data: ProcessorUpdate, *, actor: Principal
) -> ProcessorRead:
    """Change what is sent (checked on the processor as it would stand); an ended processor's record is
    history and stays as it ended (409)."""
    await transaction(session)
    processor = await get_processor(session, processor_id, lock=True)
    if processor.ended_at is not None:
        raise ProcessorEnded("An ended processor's record is kept as it ended; register a new one")
    sent = data.model_fields_set
    changes: dict[str, Any] = {
        f: getattr(data, f)
        for f in ("name", "dpa_reference", "country", "contact_email", *_AGREEMENT)
        if f in sent
    }
    if "transfer" in sent:
        changes |= _transfer_columns(data.transfer)
    if "sub_processors" in sent:
        changes["sub_processors"] = [s.model_dump(mode="json") for s in data.sub_processors or []]
    _checked(processor.model_dump() | changes)
    changes["updated_at"] = utc_now()
    await repository.update_processor(session, processor.id, **changes)
    await audit.record(session, actor, "processor.updated", target=f"{processor.id} {' '.join(sorted(sent))}")
    return await read_processor(session, processor.id)


async def end_processor(
    session: AsyncSession, processor_id: uuid.UUID, data: ProcessorEnd, *, actor: Principal
) -> ProcessorRead:
    """End the relationship: from `ended_at` on, disclosures to it are flagged, its API clients get no tokens
    and the tokens they hold are refused (auth.revocation counts an ended processor's clients as revoked);
    its tasks stay, open ones visible to staff. Ending again: 409."""
    await transaction(session)
    processor = await get_processor(session, processor_id, lock=True)
    if processor.ended_at is not None:
        raise ProcessorEnded(f"The processor ended at {rfc3339(processor.ended_at)}")
    now = utc_now()
    ended_at = data.ended_at or now
    if ended_at > now + _CLOCK_SKEW:
        raise Unprocessable("A processor cannot be ended in the future", loc=["body", "ended_at"])
    await repository.update_processor(
        session, processor.id, ended_at=ended_at, end_reason=data.reason, updated_at=now
    )
    await runtime.of(session).revoked_clients.announce(session)
    await audit.record(session, actor, "processor.ended", target=str(processor.id))
    return await read_processor(session, processor.id)


async def processors_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Processor]:
    return await repository.by_ids(session, ids) if ids else {}


async def list_processors(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[ProcessorRead], str | None]:
    processors, next_cursor = await repository.list_processors(session, limit=limit, cursor=cursor)
    urls = await webhooks.processor_endpoint_urls(session, [p.id for p in processors])
    return [render(p, urls.get(p.id)) for p in processors], next_cursor


async def read_processor(session: AsyncSession, processor_id: uuid.UUID) -> ProcessorRead:
    processor = await get_processor(session, processor_id)
    return render(
        processor, (await webhooks.processor_endpoint_urls(session, [processor.id])).get(processor.id)
    )


# --- tasks
# -----------------------------------------------------------------------------------------------------


async def create_tasks(
    session: AsyncSession,
    subject_id: uuid.UUID,
    task_type: TaskType,
    details: Mapping[uuid.UUID, TaskDetails],
    *,
    actor: Principal,
    due_at: datetime | None = None,
) -> list[ProcessorTask]:
    """One open task per recipient (the keys of `details`, with what each needs to act), due with the request
    it carries out (else a calendar month from now, Art. 12(3)); each is announced (webhook to the processor,
    which reads the details from the API: no personal data rides in the payload)."""
    await transaction(session)
    now = utc_now()
    due = due_at or add_calendar_months(now, 1)
    tasks: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "processor_id": r,
            "subject_id": subject_id,
            "type": task_type,
            "status": TaskStatus.open,
            "created_at": now,
            "due_at": due,
            "details": details[r].model_dump(mode="json"),
            "completed_at": None,
            "note": None,
        }
        for r in sorted(details, key=str)
    ]
    await repository.insert_tasks(session, tasks)
    for task in tasks:
        await webhooks.emit(
            session,
            EventType.processor_task_created,
            {
                "task_id": str(task["id"]),
                "processor_id": str(task["processor_id"]),
                "subject_id": str(subject_id),
                "type": task_type,
                "created_at": rfc3339(now),
                "due_at": rfc3339(due),
                "categories": task["details"]["categories"],
            },
            subject_id=subject_id,
        )
    if tasks:
        await audit.record(session, actor, f"processor_task.created.{task_type}", subject_id=subject_id)
    return [ProcessorTask.model_construct(**task) for task in tasks]


def render_task(task: ProcessorTask, overdue_days: int) -> TaskRead:
    now = utc_now()
    deadline = task.due_at or task.created_at + timedelta(days=overdue_days)
    return TaskRead(
        id=task.id,
        processor_id=task.processor_id,
        subject_id=task.subject_id,
        type=task.type,
        status=task.status,
        created_at=task.created_at,
        due_at=task.due_at,
        details=TaskDetails.model_validate(task.details or {"categories": []}),
        completed_at=task.completed_at,
        note=task.note,
        overdue=task.status == TaskStatus.open and deadline < now,
    )


async def get_task(session: AsyncSession, task_id: uuid.UUID, *, caller: Principal) -> ProcessorTask:
    """A task the caller may see: staff any, a processor its own (another's does not exist)."""
    task = await repository.get_task(session, task_id)
    if task is None or (caller.role == Role.processor and task.processor_id != caller.processor_id):
        raise TaskNotFound("Processor task not found")
    return task


async def list_tasks(
    session: AsyncSession,
    *,
    caller: Principal,
    status: TaskStatus | None,
    processor_id: uuid.UUID | None,
    older_than_days: int | None,
    overdue_only: bool,
    overdue_days: int,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[ProcessorTask], str | None]:
    """A processor sees its own tasks only; staff see all and filter."""
    if caller.role == Role.processor:
        processor_id = caller.processor_id
    now = utc_now()
    if overdue_only:
        status = TaskStatus.open
    created_before = now - timedelta(days=older_than_days) if older_than_days is not None else None
    return await repository.list_tasks(
        session,
        processor_id=processor_id,
        status=status,
        created_before=created_before,
        # Past due: past `due_at`, or, for a task without one, open longer than the configured days.
        overdue_at=(now, now - timedelta(days=overdue_days)) if overdue_only else None,
        limit=limit,
        cursor=cursor,
    )


async def complete_task(
    session: AsyncSession, task_id: uuid.UUID, note: str | None, *, caller: Principal
) -> ProcessorTask:
    """Only the processor the task is addressed to completes it; to anyone else it does not exist. Completing
    a done task again changes nothing and answers the same (a retry after a lost response is safe)."""
    await transaction(session)
    task = await repository.get_task(session, task_id, lock=True)
    if task is None or task.processor_id != caller.processor_id:
        raise TaskNotFound("Processor task not found")
    if task.status == TaskStatus.done:
        return task  # idempotent: a retried acknowledgement finds it done, as it left it
    completed_at = utc_now()
    # The identifiers and corrected values served their purpose: only the categories stay on record.
    kept = {"categories": (task.details or {}).get("categories", [])}
    await repository.update_task(
        session, task.id, status=TaskStatus.done, completed_at=completed_at, note=note, details=kept
    )
    await webhooks.emit(
        session,
        EventType.processor_task_completed,
        {
            "task_id": str(task.id),
            "processor_id": str(task.processor_id),
            "subject_id": str(task.subject_id),
            "type": task.type,
            "completed_at": rfc3339(completed_at),
        },
        subject_id=task.subject_id,
    )
    await audit.record(
        session,
        caller,
        f"processor_task.completed.{task.type}",
        subject_id=task.subject_id,
        target=str(task.id),
    )
    completed = await repository.get_task(session, task.id)
    assert completed is not None
    return completed


async def all_processors(session: AsyncSession) -> Sequence[Processor]:
    return await repository.all_processors(session)
