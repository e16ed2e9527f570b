from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principals import Principal
from app.catalog.schemas import Category
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.responses import created
from app.core.types import Email, Text64, Text100
from app.idempotency.deps import idempotent
from app.notices.schemas import NoticeDeliveryCreate, NoticeDeliveryList, NoticeDeliveryRead
from app.runtime import RuntimeDep
from app.subjects import service
from app.subjects.deps import SelfOrReader, SelfOrWriter, StaffReader, StaffWriter, SubjectOnly
from app.subjects.schemas import (
    DataItemCreate,
    DataItemRead,
    DataItemUpdate,
    DuplicateSubjectProblem,
    RelationshipEnd,
    SubjectCreate,
    SubjectRead,
    SubjectStatus,
)

router = APIRouter(tags=["subjects"])


async def _subject_again(key: str, session: AsyncSession, caller: Principal) -> SubjectRead:
    """A retried registration (same Idempotency-Key): the subject the first one registered."""
    return SubjectRead.model_validate(await service.reach(session, uuid.UUID(key), caller))


async def _item_again(
    key: str, session: AsyncSession, subject_id: uuid.UUID, caller: Principal
) -> DataItemRead:
    """A retried data item (same Idempotency-Key): the item the first one recorded."""
    item = await service.get_item(session, subject_id, uuid.UUID(key), caller=caller)
    return service.render_item(session, item, caller)


@router.post(
    "/subjects",
    status_code=201,
    response_model=SubjectRead,
    responses=problems(*AUTH, *BODY, models={409: DuplicateSubjectProblem}),
    summary="Register a subject",
    description="A second subject with the same e-mail address (case-insensitive) is refused with 409; "
    "the problem body's `existing_id` names the one that exists.",
)
@created("/v1/subjects/{id}")
@idempotent(replay=_subject_again)
async def create_subject(body: SubjectCreate, session: SessionDep, caller: StaffWriter) -> SubjectRead:
    return SubjectRead.model_validate(await service.create_subject(session, body, actor=caller))


@router.get(
    "/subjects",
    response_model=Page[SubjectRead],
    responses=problems(*AUTH, 422),
    summary="Find subjects (by e-mail, case-insensitive, or external reference)",
)
async def search_subjects(
    session: SessionDep,
    caller: StaffReader,
    email: Annotated[Email | None, Query(description="Exact address, case-insensitive.")] = None,
    external_ref: Annotated[Text100 | None, Query()] = None,
    status: SubjectStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SubjectRead]:
    subjects, next_cursor = await service.search_subjects(
        session,
        caller=caller,
        email=email,
        external_ref=external_ref,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[SubjectRead.model_validate(s) for s in subjects], next_cursor=next_cursor)


@router.get(
    "/subjects/{subject_id}",
    response_model=SubjectRead,
    responses=problems(*AUTH, 404, 422),
    summary="Read a subject",
)
async def read_subject(subject_id: uuid.UUID, session: SessionDep, caller: SelfOrReader) -> SubjectRead:
    return SubjectRead.model_validate(await service.read_subject(session, subject_id, caller))


@router.get(
    "/me", response_model=SubjectRead, responses=problems(*AUTH, 404), summary="The calling subject itself"
)
async def read_me(session: SessionDep, caller: SubjectOnly) -> SubjectRead:
    assert caller.subject_id is not None
    return SubjectRead.model_validate(await service.read_subject(session, caller.subject_id, caller))


@router.post(
    "/subjects/{subject_id}/relationship-end",
    response_model=SubjectRead,
    responses=problems(*AUTH, *BODY, 404),
    summary="Record the end of the customer relationship",
    description="Starts the retention clocks that run from the end of the relationship. "
    "Repeating the call changes nothing and returns the subject as it is.",
)
async def end_relationship(
    subject_id: uuid.UUID,
    session: SessionDep,
    caller: StaffWriter,
    body: Annotated[RelationshipEnd | None, Body()] = None,
) -> SubjectRead:
    ended_at = body.ended_at if body else None
    return SubjectRead.model_validate(
        await service.end_relationship(session, subject_id, ended_at, actor=caller)
    )


@router.post(
    "/subjects/{subject_id}/data",
    status_code=201,
    response_model=DataItemRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Record a personal data item",
    description="`payment` values are encrypted at rest and shown masked without `sensitive:read`.",
)
@created("/v1/subjects/{subject_id}/data/{id}")
@idempotent(replay=_item_again)
async def add_item(
    subject_id: uuid.UUID, body: DataItemCreate, session: SessionDep, caller: SelfOrWriter
) -> DataItemRead:
    item = await service.add_item(session, subject_id, body, caller=caller)
    return service.render_item(session, item, caller)


@router.get(
    "/subjects/{subject_id}/data",
    response_model=Page[DataItemRead],
    responses=problems(*AUTH, 404, 422),
    summary="The personal data held on a subject",
)
async def list_items(
    subject_id: uuid.UUID,
    session: SessionDep,
    caller: SelfOrReader,
    category: Category | None = None,
    purpose: Annotated[Text64 | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DataItemRead]:
    items, next_cursor = await service.list_items(
        session, subject_id, caller=caller, category=category, purpose=purpose, limit=limit, cursor=cursor
    )
    return Page(items=[service.render_item(session, i, caller) for i in items], next_cursor=next_cursor)


@router.get(
    "/subjects/{subject_id}/data/{item_id}",
    response_model=DataItemRead,
    responses=problems(*AUTH, 404, 422),
    summary="One personal data item",
    description="Where a recorded item's `Location` points. `payment` values are masked without "
    "`sensitive:read`.",
)
async def read_item(
    subject_id: uuid.UUID, item_id: uuid.UUID, session: SessionDep, caller: SelfOrReader
) -> DataItemRead:
    item = await service.read_item(session, subject_id, item_id, caller=caller)
    return service.render_item(session, item, caller)


@router.patch(
    "/subjects/{subject_id}/data/{item_id}",
    response_model=DataItemRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Rectify a personal data item",
    description="The new value replaces the old one, which is not kept.",
)
async def rectify_item(
    subject_id: uuid.UUID, item_id: uuid.UUID, body: DataItemUpdate, session: SessionDep, caller: SelfOrWriter
) -> DataItemRead:
    item = await service.rectify_item(session, subject_id, item_id, body.value, caller=caller)
    return service.render_item(session, item, caller)


# --- the privacy notices given (GDPR Art. 13, 14) ---------------------------------------------------------


async def _notice_again(
    key: str, session: AsyncSession, subject_id: uuid.UUID, caller: Principal
) -> NoticeDeliveryRead:
    """A retried record (same Idempotency-Key): the delivery the first one recorded (and nothing mailed)."""
    delivery = await service.notice_delivery(session, subject_id, uuid.UUID(key), caller=caller)
    return NoticeDeliveryRead.model_validate(delivery)


@router.get(
    "/subjects/{subject_id}/notice-deliveries",
    response_model=NoticeDeliveryList,
    responses=problems(*AUTH, 404, 422),
    summary="The privacy notices a subject was given",
    description="Which notice version the subject was given, when, in which language and how: at "
    "collection (registration, GDPR Art. 13), at the first contact, or by mail (Art. 14). Newest first.",
)
async def list_notice_deliveries(
    subject_id: uuid.UUID, session: SessionDep, caller: SelfOrReader
) -> NoticeDeliveryList:
    deliveries = await service.notice_deliveries(session, subject_id, caller=caller)
    return NoticeDeliveryList(items=[NoticeDeliveryRead.model_validate(d) for d in deliveries])


@router.post(
    "/subjects/{subject_id}/notice-deliveries",
    status_code=201,
    response_model=NoticeDeliveryRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Give a subject the privacy notice",
    description="`first_contact` records a notice staff gave at the first communication; `mail` mails it "
    "now, in `language`, with links to the notice and the privacy center. Either settles the notice the "
    "subject was owed. An erased subject, or mailing one without an address: 409.",
)
@created("/v1/subjects/{subject_id}/notice-deliveries/{id}")
@idempotent(replay=_notice_again)
async def give_notice(
    subject_id: uuid.UUID,
    body: NoticeDeliveryCreate,
    session: SessionDep,
    caller: StaffWriter,
    runtime: RuntimeDep,
    background: BackgroundTasks,
) -> NoticeDeliveryRead:
    delivery, mails = await service.give_notice(session, subject_id, body, actor=caller)
    for mail in mails:  # after the commit: nobody is told of a delivery that was not recorded
        background.add_task(runtime.mailer.send, mail)
    return NoticeDeliveryRead.model_validate(delivery)


@router.get(
    "/subjects/{subject_id}/notice-deliveries/{delivery_id}",
    response_model=NoticeDeliveryRead,
    responses=problems(*AUTH, 404, 422),
    summary="One notice given to a subject",
    description="Where a recorded delivery's `Location` points.",
)
async def read_notice_delivery(
    subject_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, caller: SelfOrReader
) -> NoticeDeliveryRead:
    delivery = await service.notice_delivery(session, subject_id, delivery_id, caller=caller)
    return NoticeDeliveryRead.model_validate(delivery)
