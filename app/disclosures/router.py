from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import require
from app.auth.principals import Principal, Role, Scope
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.disclosures import service
from app.disclosures.schemas import BatchAccepted, DisclosureBatch, DisclosureCreate, DisclosureRead
from app.idempotency.deps import idempotent

router = APIRouter(tags=["disclosures"])

Reporter = Annotated[Principal, Depends(require({Role.processor, Role.staff}, Scope.disclosures_write))]
# A disclosure by id: staff who read the log, or the processor that received it (another's: 404).
RecipientOrReader = Annotated[
    Principal, Depends(require({Role.processor, Role.staff}, Scope.disclosures_read))
]
LogReader = Annotated[Principal, Depends(require(Role.staff, Scope.disclosures_read))]
SelfOrDisclosureReader = Annotated[
    Principal, Depends(require({Role.subject, Role.staff}, Scope.disclosures_read))
]

REPORTING = (
    "A processor reports what it received (the recipient is always itself, whatever is sent), about "
    "subjects disclosed to it: by staff, or by a task addressed to it. Any other subject is unknown to it, "
    "answered exactly as an id that does not exist. Staff with `disclosures:write` record what WeSafe "
    "disclosed, for any subject, and name `recipient_id`. Append-only. A disclosure against the rules is "
    "recorded all the same, `flagged`, with its `flags`: the subject erased by then (`subject_erased`), "
    "restricted for a purpose other than a legal obligation (`subject_restricted`), a consent purpose "
    "without consent granted at `disclosed_at` (`no_consent`), a recipient in a third country without a "
    "transfer mechanism (`no_transfer_mechanism`), ended by then (`processor_ended`) or whose agreement had "
    "expired (`dpa_expired`). Staff find them at "
    "`GET /v1/disclosures?flagged=true`."
)


async def _disclosure_again(key: str, session: AsyncSession, caller: Principal) -> DisclosureRead:
    """A retried report (same Idempotency-Key): the disclosure the first one recorded."""
    return await service.get_disclosure(session, uuid.UUID(key), caller=caller)


@router.post(
    "/disclosures",
    status_code=201,
    response_model=DisclosureRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Report a disclosure",
    description=REPORTING + " Unknown subject (to a processor: one not disclosed to it) or recipient: 404.",
)
@created("/v1/disclosures/{id}")
@idempotent(replay=_disclosure_again)
async def record(body: DisclosureCreate, session: SessionDep, caller: Reporter) -> DisclosureRead:
    return await service.get_disclosure(
        session, await service.record(session, body, caller=caller), caller=caller
    )


@router.get(
    "/disclosures",
    response_model=Page[DisclosureRead],
    responses=problems(*AUTH, 422),
    summary="The disclosure log across subjects (staff): the flagged ones to review",
    description="Newest recorded first. `flagged=true`: the disclosures recorded against a rule, with why "
    "(`flags`); `recipient_id`: one processor's. Audited.",
)
async def list_log(
    session: SessionDep,
    caller: LogReader,
    flagged: Annotated[
        bool | None, Query(description="Only flagged (true) or unflagged (false) ones.")
    ] = None,
    recipient_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DisclosureRead]:
    items, next_cursor = await service.list_log(
        session, caller=caller, flagged=flagged, recipient_id=recipient_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    # Only an id matches: /disclosures/batch stays a POST-only resource (GET there is a 405, not a 422).
    "/disclosures/{disclosure_id:uuid}",
    response_model=DisclosureRead,
    responses=problems(*AUTH, 404, 422),
    summary="One disclosure",
    description="Where a reported disclosure's `Location` points. Staff with `disclosures:read` read any; a "
    "processor reads those made to it (another's: 404).",
)
async def read(disclosure_id: uuid.UUID, session: SessionDep, caller: RecipientOrReader) -> DisclosureRead:
    return await service.read_disclosure(session, disclosure_id, caller=caller)


@router.post(
    "/disclosures/batch",
    status_code=201,
    response_model=BatchAccepted,
    responses=problems(*AUTH, *BODY),
    summary="Report up to 1000 disclosures, all or nothing",
    description=REPORTING + " One bad item fails the batch: a 422 naming its index and field "
    '(`errors[0].loc` = `["body", "items", index, field]`).',
)
async def record_batch(body: DisclosureBatch, session: SessionDep, caller: Reporter) -> BatchAccepted:
    return BatchAccepted(accepted=await service.record_batch(session, body.items, caller=caller))


@router.get(
    "/subjects/{subject_id}/disclosures",
    response_model=Page[DisclosureRead],
    responses=problems(*AUTH, 404, 422),
    summary="Who received the subject's data",
    description="GDPR Art. 15(1)(c) and 19: each recipient with its name and country; `third_country` marks "
    "a transfer outside the EU/EEA.",
)
async def list_for_subject(
    subject_id: uuid.UUID,
    session: SessionDep,
    caller: SelfOrDisclosureReader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DisclosureRead]:
    items, next_cursor = await service.list_for_subject(
        session, subject_id, caller=caller, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
