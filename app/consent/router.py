from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor

from app.auth.principals import Principal, Role
from app.consent import service
from app.consent.deps import SelfOrConsentReader, SelfOrConsentWriter
from app.consent.schemas import (
    JWKS,
    Channel,
    ConsentCreate,
    ConsentEventRead,
    ConsentHistoryItem,
    ConsentStateList,
    ConsentStateRead,
    EvidenceRead,
    ReceiptMailed,
)
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.idempotency.deps import idempotent
from app.runtime import RuntimeDep

if TYPE_CHECKING:
    from app.consent.models import ConsentEvent

router = APIRouter(tags=["consent"])


class ConsentPurposeSegment(Convertor[str]):
    """A purpose code in a consent path: never `history`, the literal segment of the history resource, so
    that DELETE .../consents/history is a 405, as the OpenAPI document says, not a withdrawal."""

    regex = r"(?!history$)[a-z][a-z0-9_]{1,63}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("consent_purpose", ConsentPurposeSegment())

GPC_HELP = (
    "Global Privacy Control. `1` on a grant from the `web` channel for a purpose covered by GPC (see "
    "`gpc` in GET /v1/purposes; marketing and analytics by default) records a withdrawal instead, with "
    "method `gpc`: the browser's signal is the subject's choice."
)


async def _event_again(
    key: str, session: AsyncSession, subject_id: uuid.UUID, caller: Principal
) -> ConsentEventRead:
    """A retried consent write (same Idempotency-Key): the event the first one recorded."""
    return ConsentEventRead.model_validate(
        await service.get_event(session, subject_id, uuid.UUID(key), caller=caller)
    )


@router.post(
    "/subjects/{subject_id}/consents",
    status_code=201,
    response_model=ConsentEventRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Record a consent or its withdrawal",
    description="Per purpose, for purposes whose legal basis is `consent` (others: 422). Returns the event "
    "with a signed consent receipt. " + GPC_HELP,
)
@created("/v1/subjects/{subject_id}/consents/history/{id}")
@idempotent(replay=_event_again)
async def record_consent(
    subject_id: uuid.UUID,
    body: ConsentCreate,
    session: SessionDep,
    caller: SelfOrConsentWriter,
    sec_gpc: Annotated[str | None, Header(alias="Sec-GPC", max_length=10, description=GPC_HELP)] = None,
) -> ConsentEventRead:
    return ConsentEventRead.model_validate(
        await service.record(session, subject_id, body, caller=caller, gpc=sec_gpc == "1")
    )


@router.delete(
    "/subjects/{subject_id}/consents/{purpose:consent_purpose}",
    response_model=ConsentEventRead,
    responses=problems(*AUTH, 404, 422),
    summary="Withdraw consent for a purpose",
    description="As easy as giving it: one call, no body. Records a withdrawal event now, under the "
    "notice in force, and returns it with its receipt.",
)
async def withdraw_consent(
    subject_id: uuid.UUID,
    purpose: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,63}$")],
    session: SessionDep,
    caller: SelfOrConsentWriter,
    channel: Annotated[
        Channel | None, Query(description="Defaults to `web` for a subject, `api` for staff.")
    ] = None,
) -> ConsentEventRead:
    channel = channel or (Channel.web if caller.role == Role.subject else Channel.api)
    event = await service.withdraw(session, subject_id, purpose, caller=caller, channel=channel)
    return ConsentEventRead.model_validate(event)


@router.get(
    "/subjects/{subject_id}/consents",
    response_model=ConsentStateList,
    responses=problems(*AUTH, 404, 422),
    summary="Current consent per purpose",
    description="One item per purpose that has events; the latest `occurred_at` wins. `renewal_due`: "
    "granted under a notice version whose text about the purpose has since changed (ask again; nothing is "
    "withdrawn by it).",
)
async def current_consents(
    subject_id: uuid.UUID, session: SessionDep, caller: SelfOrConsentReader
) -> ConsentStateList:
    states = await service.current(session, subject_id, caller=caller)
    due = await service.renewal_due(session, states)
    return ConsentStateList(
        items=[
            ConsentStateRead.model_validate(s).model_copy(update={"renewal_due": s.purpose in due})
            for s in states
        ]
    )


@router.get(
    "/subjects/{subject_id}/consents/history",
    response_model=Page[ConsentHistoryItem],
    responses=problems(*AUTH, 404, 422),
    summary="Every consent event, newest first, with its evidence",
)
async def consent_history(
    subject_id: uuid.UUID,
    session: SessionDep,
    caller: SelfOrConsentReader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConsentHistoryItem]:
    events, next_cursor = await service.history(
        session, subject_id, caller=caller, limit=limit, cursor=cursor
    )
    return Page(items=[_history_item(e) for e in events], next_cursor=next_cursor)


@router.get(
    "/subjects/{subject_id}/consents/history/{event_id}",
    response_model=ConsentHistoryItem,
    responses=problems(*AUTH, 404, 422),
    summary="One consent event, with its evidence",
    description="Where a recorded event's `Location` points.",
)
async def consent_event(
    subject_id: uuid.UUID, event_id: uuid.UUID, session: SessionDep, caller: SelfOrConsentReader
) -> ConsentHistoryItem:
    return _history_item(await service.read_event(session, subject_id, event_id, caller=caller))


def _history_item(event: ConsentEvent) -> ConsentHistoryItem:
    return ConsentHistoryItem(
        **ConsentEventRead.model_validate(event).model_dump(),
        recorded_by=event.recorded_by,
        evidence=EvidenceRead.of(event),
    )


@router.post(
    "/subjects/{subject_id}/consents/history/{event_id}/receipt/mail",
    status_code=202,
    response_model=ReceiptMailed,
    responses=problems(*AUTH, 404, 409, 422, 429),
    summary="Mail a consent event's receipt to the subject",
    description="To the subject's registered address only (never one given in the request): the receipt "
    "in words, in Swedish and English, with the signed receipt (JWS) and where its key is published. The "
    "subject itself, or staff with `consents:write`. Rate limited per subject (429 with `Retry-After`; "
    "`PRIVACY_RECEIPT_MAIL_RATE_LIMIT`, 5 an hour by default), and audited (`consent.receipt_mailed`). "
    "409 for an erased subject, who has no address.",
)
async def mail_receipt(
    subject_id: uuid.UUID,
    event_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    caller: SelfOrConsentWriter,
) -> ReceiptMailed:
    mail = await service.mail_receipt(session, subject_id, event_id, caller=caller)
    background.add_task(runtime.mailer.send, mail)  # after the commit
    return ReceiptMailed(detail="The receipt is on its way to the subject's address.")


@router.get(
    "/consent-receipts/jwks.json",
    response_model=JWKS,
    summary="Public key(s) that verify consent receipts",
    description="A JWKS (RFC 7517). Verify a receipt with any JWT library: ES256, `kid` in its header.",
)
async def receipt_keys(runtime: RuntimeDep, response: Response) -> JWKS:
    response.headers["Cache-Control"] = "public, max-age=3600"
    return JWKS(**runtime.keys.receipts.jwks())
