from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query

from app.catalog.schemas import Category
from app.core.crypto import KeysDep
from app.core.db import SessionDep
from app.core.errors import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.types import Email, Text
from app.idempotency.deps import IdempotencyDep
from app.subjects import service
from app.subjects.deps import SelfOrReader, SelfOrWriter, StaffReader, StaffWriter, SubjectOnly
from app.subjects.schemas import (
    DataItemCreate,
    DataItemRead,
    DataItemUpdate,
    RelationshipEnd,
    SubjectCreate,
    SubjectRead,
    SubjectStatus,
)

router = APIRouter(tags=["subjects"])


@router.post("/subjects", status_code=201, response_model=SubjectRead, responses=problems(*AUTH, *BODY, 409),
             summary="Register a subject",
             description="A second subject with the same e-mail address (case-insensitive) is refused with 409; "
                         "the problem body's `existing_id` names the one that exists.")
async def create_subject(body: SubjectCreate, session: SessionDep, keys: KeysDep, caller: StaffWriter,
                         idempotency: IdempotencyDep) -> SubjectRead:
    return await idempotency.run(
        session, caller,
        create=lambda: service.create_subject(session, keys, body, actor=caller),
        key_of=lambda subject: subject.id,
        load=lambda key: service.reach(session, uuid.UUID(key), caller),
        render=SubjectRead.model_validate,
    )


@router.get("/subjects", response_model=Page[SubjectRead], responses=problems(*AUTH, 422),
            summary="Find subjects (by e-mail, case-insensitive, or external reference)")
async def search_subjects(
    session: SessionDep, keys: KeysDep, caller: StaffReader,
    email: Annotated[Email | None, Query(description="Exact address, case-insensitive.")] = None,
    external_ref: Annotated[Text(100) | None, Query()] = None,  # type: ignore[valid-type]
    status: SubjectStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SubjectRead]:
    subjects, next_cursor = await service.search_subjects(session, keys, caller=caller, email=email,
                                                          external_ref=external_ref, status=status, limit=limit,
                                                          cursor=cursor)
    return Page(items=[SubjectRead.model_validate(s) for s in subjects], next_cursor=next_cursor)


@router.get("/subjects/{subject_id}", response_model=SubjectRead, responses=problems(*AUTH, 404, 422),
            summary="Read a subject")
async def read_subject(subject_id: uuid.UUID, session: SessionDep, caller: SelfOrReader) -> SubjectRead:
    return SubjectRead.model_validate(await service.read_subject(session, subject_id, caller))


@router.get("/me", response_model=SubjectRead, responses=problems(*AUTH, 404), summary="The calling subject itself")
async def read_me(session: SessionDep, caller: SubjectOnly) -> SubjectRead:
    assert caller.subject_id is not None
    return SubjectRead.model_validate(await service.read_subject(session, caller.subject_id, caller))


@router.post("/subjects/{subject_id}/relationship-end", response_model=SubjectRead,
             responses=problems(*AUTH, *BODY, 404), summary="Record the end of the customer relationship",
             description="Starts the retention clocks that run from the end of the relationship. "
                         "Repeating the call changes nothing and returns the subject as it is.")
async def end_relationship(subject_id: uuid.UUID, session: SessionDep, caller: StaffWriter,
                           body: Annotated[RelationshipEnd | None, Body()] = None) -> SubjectRead:
    ended_at = body.ended_at if body else None
    return SubjectRead.model_validate(await service.end_relationship(session, subject_id, ended_at, actor=caller))


@router.post("/subjects/{subject_id}/data", status_code=201, response_model=DataItemRead,
             responses=problems(*AUTH, *BODY, 404, 409), summary="Record a personal data item",
             description="`payment` values are encrypted at rest and shown masked without `sensitive:read`.")
async def add_item(subject_id: uuid.UUID, body: DataItemCreate, session: SessionDep, keys: KeysDep,
                   caller: SelfOrWriter, idempotency: IdempotencyDep) -> DataItemRead:
    return await idempotency.run(
        session, caller,
        create=lambda: service.add_item(session, keys, subject_id, body, caller=caller),
        key_of=lambda item: item.id,
        load=lambda key: service.get_item(session, subject_id, uuid.UUID(key), caller=caller),
        render=lambda item: service.render_item(item, keys, caller),
    )


@router.get("/subjects/{subject_id}/data", response_model=Page[DataItemRead], responses=problems(*AUTH, 404, 422),
            summary="The personal data held on a subject")
async def list_items(subject_id: uuid.UUID, session: SessionDep, keys: KeysDep, caller: SelfOrReader,
                     category: Category | None = None,
                     purpose: Annotated[Text(64) | None, Query()] = None,  # type: ignore[valid-type]
                     limit: Limit = 50, cursor: Cursor = None) -> Page[DataItemRead]:
    items, next_cursor = await service.list_items(session, subject_id, caller=caller, category=category,
                                                  purpose=purpose, limit=limit, cursor=cursor)
    return Page(items=[service.render_item(i, keys, caller) for i in items], next_cursor=next_cursor)


@router.patch("/subjects/{subject_id}/data/{item_id}", response_model=DataItemRead,
              responses=problems(*AUTH, *BODY, 404, 409), summary="Rectify a personal data item",
              description="The new value replaces the old one, which is not kept.")
async def rectify_item(subject_id: uuid.UUID, item_id: uuid.UUID, body: DataItemUpdate, session: SessionDep,
                       keys: KeysDep, caller: SelfOrWriter) -> DataItemRead:
    item = await service.rectify_item(session, keys, subject_id, item_id, body.value, caller=caller)
    return service.render_item(item, keys, caller)
