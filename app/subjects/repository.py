"""Subjects, the register of their personal data, and their contacts (keyed hashes): the SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core import sql
from app.core.sql import Insert
from app.subjects.models import PersonalDataItem, Subject, SubjectContact
from app.subjects.schemas import SubjectStatus

_SUBJECTS, _ITEMS, _CONTACTS = (
    sql.table_of(Subject),
    sql.table_of(PersonalDataItem),
    sql.table_of(SubjectContact),
)

_INSERT_SUBJECT = Insert(
    _SUBJECTS,
    "subject",
    on_conflict=lambda insert: insert.on_conflict_do_nothing(
        index_elements=[_SUBJECTS.c.email_hash]
    ).returning(_SUBJECTS.c.id),
)
_INSERT_ITEM = Insert(_ITEMS, "item")
_INSERT_CONTACT = Insert(_CONTACTS, "contact", on_conflict=lambda insert: insert.on_conflict_do_nothing())
_CONTACT_HASHES = select(_CONTACTS.c.contact_hash).where(
    _CONTACTS.c.subject_id == bindparam("subject_id"), _CONTACTS.c.kind == bindparam("kind")
)
_VERIFIED_CONTACT_HASHES = _CONTACT_HASHES.where(_CONTACTS.c.verified_at.is_not(None))


# --- subjects
# --------------------------------------------------------------------------------------------------


async def get(session: AsyncSession, subject_id: uuid.UUID, *, lock: bool = False) -> Subject | None:
    """The subject as stored now; `lock`: its row locked until the transaction ends."""
    return await session.get(Subject, subject_id, populate_existing=True, with_for_update=lock or None)


async def find_by_email_hash(session: AsyncSession, email_hash: str) -> Subject | None:
    statement = (
        select(Subject).where(col(Subject.email_hash) == email_hash).execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def find_erased_with_kept_items(session: AsyncSession, email_hash: str) -> Subject | None:
    """The erased subject that this address belonged to, while the law still keeps some of its items."""
    statement = (
        select(Subject)
        .where(col(Subject.access_email_hash) == email_hash)
        .order_by(col(Subject.erased_at).desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def insert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the address is taken (a concurrent registration got there first)."""
    return bool(await sql.write(session, _INSERT_SUBJECT(values)))


async def forget_identity(session: AsyncSession, subject_id: uuid.UUID, **changes: Any) -> None:
    """Nothing that names the subject stays on its row (name, address, its hash, the caller's reference); its
    status is erased; `changes` say when (and may keep `access_email_hash`, see the model)."""
    forgotten: dict[str, Any] = {
        "email": None,
        "email_hash": None,
        "access_email_hash": None,
        "name": None,
        "external_ref": None,
        "status": SubjectStatus.erased,
    }
    await update_subject(session, subject_id, **(forgotten | changes))


async def update_subject(session: AsyncSession, subject_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_SUBJECTS).where(_SUBJECTS.c.id == subject_id).values(**changes))


async def search(
    session: AsyncSession,
    *,
    email_hash: str | None,
    external_ref: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Subject], str | None]:
    statement = sql.where_given(
        select(Subject),
        (Subject.email_hash, email_hash),
        (Subject.external_ref, external_ref),
        (Subject.status, status),
    )
    return await sql.paginate(
        session,
        statement,
        order=(Subject.created_at, Subject.id),
        limit=limit,
        cursor=cursor,
    )


async def any_registered(session: AsyncSession) -> bool:
    return (await session.execute(select(_SUBJECTS.c.id).limit(1))).first() is not None


# --- the register
# ----------------------------------------------------------------------------------------------


async def insert_item(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_ITEM(values))


async def get_item(session: AsyncSession, item_id: uuid.UUID) -> PersonalDataItem | None:
    return await session.get(PersonalDataItem, item_id, populate_existing=True)


async def update_item(session: AsyncSession, item_id: uuid.UUID, **changes: Any) -> None:
    await sql.modify(session, update(_ITEMS).where(_ITEMS.c.id == item_id).values(**changes))


async def list_items(
    session: AsyncSession,
    subject_id: uuid.UUID,
    *,
    category: str | None,
    purpose: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[PersonalDataItem], str | None]:
    statement = sql.where_given(
        select(PersonalDataItem).where(col(PersonalDataItem.subject_id) == subject_id),
        (PersonalDataItem.category, category),
        (PersonalDataItem.purpose, purpose),
    )
    return await sql.paginate(
        session,
        statement,
        order=(PersonalDataItem.collected_at, PersonalDataItem.id),
        limit=limit,
        cursor=cursor,
    )


async def items_of(session: AsyncSession, subject_id: uuid.UUID) -> Sequence[PersonalDataItem]:
    statement = select(PersonalDataItem).where(col(PersonalDataItem.subject_id) == subject_id)
    return (await session.execute(statement.execution_options(populate_existing=True))).scalars().all()


async def keep_items(session: AsyncSession, kept: dict[uuid.UUID, datetime], reason: str) -> None:
    """Mark items kept (at erasure, for bookkeeping) until when, and why."""
    if kept:
        await sql.modify(
            session,
            update(_ITEMS)
            .where(_ITEMS.c.id == bindparam("item_id"))
            .values(retained_until=bindparam("until"), retention_reason=reason),
            [{"item_id": item_id, "until": until} for item_id, until in kept.items()],
        )


async def delete_items(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    if item_ids:
        await sql.modify(
            session,
            delete(_ITEMS).where(sql.among(sql.dialect_of(session), _ITEMS.c.id, "ids", list(item_ids))),
        )


async def anonymize_items(session: AsyncSession, item_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """No value left, and the collection date only to the month: what remains counts, it identifies no one."""
    if not item_ids:
        return
    ids = list(item_ids)
    rows = await session.execute(
        select(_ITEMS.c.id, _ITEMS.c.collected_at).where(
            sql.among(sql.dialect_of(session), _ITEMS.c.id, "ids", ids)
        )
    )
    months = [
        {"item_id": item_id, "month": collected_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)}
        for item_id, collected_at in rows
    ]
    if months:
        await sql.modify(
            session,
            update(_ITEMS)
            .where(_ITEMS.c.id == bindparam("item_id"))
            .values(
                value=None,
                ciphertext=None,
                key_id=None,
                collected_at=bindparam("month"),
                anonymized_at=now,
                updated_at=now,
            ),
            months,
        )
    await sql.modify(
        session, delete(_CONTACTS).where(sql.among(sql.dialect_of(session), _CONTACTS.c.item_id, "ids", ids))
    )


# --- contacts
# --------------------------------------------------------------------------------------------------


async def insert_contact(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_CONTACT(values))


async def delete_item_contacts(session: AsyncSession, item_id: uuid.UUID) -> None:
    await sql.modify(session, delete(_CONTACTS).where(_CONTACTS.c.item_id == item_id))


async def delete_contacts(session: AsyncSession, subject_id: uuid.UUID) -> None:
    await sql.modify(session, delete(_CONTACTS).where(_CONTACTS.c.subject_id == subject_id))


async def contact_hashes(
    session: AsyncSession, subject_id: uuid.UUID, kind: str, *, verified_only: bool
) -> list[str]:
    statement = _VERIFIED_CONTACT_HASHES if verified_only else _CONTACT_HASHES
    return [
        row["contact_hash"]
        for row in await sql.run(session, statement, {"subject_id": subject_id, "kind": kind})
    ]


async def contact(session: AsyncSession, subject_id: uuid.UUID, contact_hash: str) -> SubjectContact | None:
    return await session.get(SubjectContact, (contact_hash, subject_id), populate_existing=True)


async def contact_of_item(session: AsyncSession, item_id: uuid.UUID) -> SubjectContact | None:
    statement = select(SubjectContact).where(col(SubjectContact.item_id) == item_id)
    return (await session.execute(statement.execution_options(populate_existing=True))).scalar_one_or_none()


async def mark_verified(
    session: AsyncSession,
    subject_id: uuid.UUID,
    contact_hash: str,
    *,
    at: datetime,
    by: str,
    reason: str | None,
) -> int:
    """Record how the contact was verified (the latest proof replaces an earlier one); the rows changed."""
    return await sql.modify(
        session,
        update(_CONTACTS)
        .where(_CONTACTS.c.subject_id == subject_id, _CONTACTS.c.contact_hash == contact_hash)
        .values(verified_at=at, verified_by=by, verified_reason=reason),
    )


async def verified_owners(session: AsyncSession, hashes: set[str]) -> dict[str, list[uuid.UUID]]:
    """Contact hash → the subjects that verified it as theirs, the earliest registered first."""
    rows = await session.execute(
        select(_CONTACTS.c.contact_hash, _CONTACTS.c.subject_id)
        .join(_SUBJECTS, _SUBJECTS.c.id == _CONTACTS.c.subject_id)
        .where(_CONTACTS.c.contact_hash.in_(hashes), _CONTACTS.c.verified_at.is_not(None))
        .order_by(_SUBJECTS.c.created_at, _SUBJECTS.c.id)
    )
    owners: dict[str, list[uuid.UUID]] = {}
    for contact_hash, subject_id in rows:
        owners.setdefault(contact_hash, []).append(subject_id)
    return owners


# --- what the retention sweep reads
# ------------------------------------------------------------------------------


async def retention_page(session: AsyncSession, after: uuid.UUID | None, limit: int) -> Sequence[Any]:
    """The next subjects (by id) that may still hold identifiable data: id, status, relationship end."""
    statement = select(_SUBJECTS.c.id, _SUBJECTS.c.status, _SUBJECTS.c.relationship_ended_at).where(
        _SUBJECTS.c.anonymized_at.is_(None)
    )
    if after is not None:
        statement = statement.where(_SUBJECTS.c.id > after)
    return (await session.execute(statement.order_by(_SUBJECTS.c.id).limit(limit))).all()


async def retention_items(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The not-yet-anonymized items of these subjects: only what the rules need, never the values."""
    return (
        await session.execute(
            select(
                _ITEMS.c.id,
                _ITEMS.c.subject_id,
                _ITEMS.c.purpose,
                _ITEMS.c.category,
                _ITEMS.c.collected_at,
                _ITEMS.c.retained_until,
            ).where(
                sql.among(sql.dialect_of(session), _ITEMS.c.subject_id, "ids", list(subject_ids)),
                _ITEMS.c.anonymized_at.is_(None),
            )
        )
    ).all()


async def still_identifiable(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these subjects that still have an item that is not anonymized."""
    rows = await session.execute(
        select(_ITEMS.c.subject_id)
        .where(
            sql.among(sql.dialect_of(session), _ITEMS.c.subject_id, "ids", list(subject_ids)),
            _ITEMS.c.anonymized_at.is_(None),
        )
        .distinct()
    )
    return set(rows.scalars())
