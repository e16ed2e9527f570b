"""Subjects and their personal data: who may reach whom, encryption and masking of sensitive values."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.catalog import service as catalog
from app.catalog.schemas import SENSITIVE_CATEGORIES, Category
from app.core.crypto import Keys
from app.core.db import among, insert_or_ignore
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.pagination import paginate
from app.core.security import Principal, Role, Scope
from app.core.time import utc_now
from app.subjects.models import PersonalDataItem, Subject, SubjectContact
from app.subjects.schemas import DataItemCreate, DataItemRead, SubjectCreate, SubjectStatus


class SubjectNotFound(NotFound):
    title = "Subject not found"


class DataItemNotFound(NotFound):
    title = "Personal data item not found"


class SubjectErased(Conflict):
    title = "Subject erased"


class DuplicateSubject(Conflict):
    title = "A subject with this e-mail address exists"


def check_reach(subject_id: uuid.UUID, caller: Principal) -> None:
    """A subject reaching for another gets the same 404 as for an id that does not exist, so it learns
    nothing about who else is registered."""
    if caller.role == Role.subject and caller.subject_id != subject_id:
        raise SubjectNotFound("Subject not found")


def status_column(subject_id: Any) -> Any:
    """The subject's status (NULL: no such subject), as a column for a caller's query."""
    return select(Subject.status).where(Subject.id == subject_id).scalar_subquery()


async def reach(session: AsyncSession, subject_id: uuid.UUID, caller: Principal) -> Subject:
    """The subject, if the caller may reach it (else 404, see check_reach)."""
    check_reach(subject_id, caller)
    subject = await session.get(Subject, subject_id)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    return subject


async def read_subject(session: AsyncSession, subject_id: uuid.UUID, caller: Principal) -> Subject:
    subject = await reach(session, subject_id, caller)
    await audit.record(session, caller, "subject.read", subject_id=subject.id)
    return subject


async def find_by_email(session: AsyncSession, keys: Keys, email: str) -> Subject | None:
    query = select(Subject).where(Subject.email_hash == keys.contacts.email(email))
    return (await session.execute(query)).scalar_one_or_none()


async def create_subject(session: AsyncSession, keys: Keys, data: SubjectCreate, *, actor: Principal) -> Subject:
    existing = await find_by_email(session, keys, data.email)
    if existing is not None:
        raise DuplicateSubject("A subject with this e-mail address already exists", existing_id=str(existing.id))
    subject = Subject(email=data.email, email_hash=keys.contacts.email(data.email), name=data.name,
                      external_ref=data.external_ref)
    try:
        async with session.begin_nested():  # a concurrent create of the same address loses here, not with a 500
            session.add(subject)
            await session.flush()
            session.add(SubjectContact(contact_hash=subject.email_hash, subject_id=subject.id, kind="email"))
            await session.flush()
    except IntegrityError:
        existing = await find_by_email(session, keys, data.email)
        raise DuplicateSubject("A subject with this e-mail address already exists",
                               existing_id=str(existing.id) if existing else None) from None
    await audit.record(session, actor, "subject.created", subject_id=subject.id)
    return subject


async def search_subjects(
    session: AsyncSession, keys: Keys, *, caller: Principal, email: str | None, external_ref: str | None,
    status: SubjectStatus | None, limit: int, cursor: str | None,
) -> tuple[Sequence[Subject], str | None]:
    statement = select(Subject)
    if email is not None:
        statement = statement.where(Subject.email_hash == keys.contacts.email(email))
    if external_ref is not None:
        statement = statement.where(Subject.external_ref == external_ref)
    if status is not None:
        statement = statement.where(Subject.status == status)
    subjects, next_cursor = await paginate(session, statement, order=(Subject.created_at, Subject.id), limit=limit,
                                           cursor=cursor, key_type=uuid.UUID)
    await audit.record_each(session, caller, "subject.read", (s.id for s in subjects))
    return subjects, next_cursor


async def end_relationship(session: AsyncSession, subject_id: uuid.UUID, ended_at: datetime | None, *,
                           actor: Principal) -> Subject:
    """Record the end of the customer relationship (the retention clocks start). Repeating it changes nothing."""
    subject = await reach(session, subject_id, actor)
    if subject.relationship_ended_at is not None:
        return subject
    now = utc_now()
    if ended_at is not None and ended_at > now:
        raise Unprocessable("The relationship cannot end in the future", loc=["body", "ended_at"])
    subject.relationship_ended_at = ended_at or now
    subject.updated_at = now
    await session.flush()
    await audit.record(session, actor, "subject.relationship_ended", subject_id=subject.id)
    return subject


# --- the register ------------------------------------------------------------------------------------------


def mask(value: str) -> str:
    """The last 4 digits, and only when at least 4 more stay hidden; a shorter value shows nothing."""
    digits = re.sub(r"\D", "", value)
    return "****" + digits[-4:] if len(digits) >= 8 else "****"


def _context(item: PersonalDataItem) -> bytes:
    return f"personal_data_item:{item.id}:{item.subject_id}".encode()


async def _store_value(session: AsyncSession, item: PersonalDataItem, value: str, keys: Keys) -> None:
    if item.category in SENSITIVE_CATEGORIES:
        item.key_id, item.ciphertext = keys.cipher.encrypt(value, context=_context(item))
        item.value = None
    else:
        item.value = value
    if item.category in (Category.email, Category.phone):
        await _index_contact(session, item, keys)


async def _index_contact(session: AsyncSession, item: PersonalDataItem, keys: Keys) -> None:
    """Keep the subject's contact index in step with an e-mail or phone item (a value that is not a valid
    address or number is kept as data, but cannot be matched as a contact)."""
    await session.execute(delete(SubjectContact).where(SubjectContact.item_id == item.id))
    assert item.value is not None
    contact_hash = keys.contacts.email(item.value) if item.category == Category.email else keys.contacts.phone(item.value)
    if contact_hash is not None:
        await insert_or_ignore(session, SubjectContact.__table__, {
            "contact_hash": contact_hash, "subject_id": item.subject_id, "kind": item.category, "item_id": item.id})


def render_item(item: PersonalDataItem, keys: Keys, caller: Principal) -> DataItemRead:
    sensitive = item.category in SENSITIVE_CATEGORIES
    if not sensitive:
        value = item.value or ""
    else:
        assert item.ciphertext is not None and item.key_id is not None
        plain = keys.cipher.decrypt(item.key_id, item.ciphertext, context=_context(item))
        value = plain if caller.has(Scope.sensitive_read) else mask(plain)
    return DataItemRead(id=item.id, category=item.category, value=value, source=item.source, purpose=item.purpose,
                        collected_at=item.collected_at, updated_at=item.updated_at, sensitive=sensitive,
                        retained_until=item.retained_until, retention_reason=item.retention_reason)


async def add_item(session: AsyncSession, keys: Keys, subject_id: uuid.UUID, data: DataItemCreate, *,
                   caller: Principal) -> PersonalDataItem:
    subject = await reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased; no new data is recorded about it")
    await catalog.require_purpose(session, data.purpose, loc=["body", "purpose"])
    now = utc_now()
    item = PersonalDataItem(id=uuid.uuid4(), subject_id=subject.id, category=data.category, source=data.source,
                            purpose=data.purpose, collected_at=now, updated_at=now)
    session.add(item)
    await session.flush()
    await _store_value(session, item, data.value, keys)
    await session.flush()
    await audit.record(session, caller, "personal_data.added", subject_id=subject.id, target=str(item.id))
    return item


async def _reach_item(session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID,
                      caller: Principal) -> tuple[Subject, PersonalDataItem]:
    subject = await reach(session, subject_id, caller)
    item = await session.get(PersonalDataItem, item_id)
    if item is None or item.subject_id != subject.id:
        raise DataItemNotFound("Personal data item not found")
    return subject, item


async def get_item(session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *,
                   caller: Principal) -> PersonalDataItem:
    return (await _reach_item(session, subject_id, item_id, caller))[1]


async def list_items(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal, category: str | None, purpose: str | None,
    limit: int, cursor: str | None,
) -> tuple[Sequence[PersonalDataItem], str | None]:
    subject = await reach(session, subject_id, caller)
    statement = select(PersonalDataItem).where(PersonalDataItem.subject_id == subject.id)
    if category is not None:
        statement = statement.where(PersonalDataItem.category == category)
    if purpose is not None:
        statement = statement.where(PersonalDataItem.purpose == purpose)
    items, next_cursor = await paginate(session, statement, order=(PersonalDataItem.collected_at, PersonalDataItem.id),
                                        limit=limit, cursor=cursor, key_type=uuid.UUID)
    await audit.record(session, caller, "personal_data.read", subject_id=subject.id)
    return items, next_cursor


async def rectify_item(session: AsyncSession, keys: Keys, subject_id: uuid.UUID, item_id: uuid.UUID, value: str, *,
                       caller: Principal) -> PersonalDataItem:
    """Replace the value; the old one is not kept anywhere."""
    subject, item = await _reach_item(session, subject_id, item_id, caller)
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased")
    await _store_value(session, item, value, keys)
    item.updated_at = utc_now()
    await session.flush()
    await audit.record(session, caller, "personal_data.rectified", subject_id=item.subject_id, target=str(item.id))
    return item


# --- contacts ----------------------------------------------------------------------------------------------


async def contact_hashes(session: AsyncSession, subject_id: uuid.UUID, kind: str) -> list[str]:
    """The keyed hashes of the subject's known e-mail addresses or phone numbers."""
    rows = await session.execute(select(SubjectContact.contact_hash).where(
        SubjectContact.subject_id == subject_id, SubjectContact.kind == kind))
    return list(rows.scalars())


async def subjects_by_contact(session: AsyncSession, hashes: set[str]) -> dict[str, uuid.UUID]:
    """Contact hash → the subject it belongs to (an address shared by several: the earliest registered)."""
    if not hashes:
        return {}
    rows = await session.execute(select(SubjectContact.contact_hash, SubjectContact.subject_id)
                                 .join(Subject, Subject.id == SubjectContact.subject_id)
                                 .where(SubjectContact.contact_hash.in_(hashes))
                                 .order_by(Subject.created_at.desc()))
    return {contact_hash: subject_id for contact_hash, subject_id in rows}


# --- what rights requests do to the register ---------------------------------------------------------------


async def set_restricted(session: AsyncSession, subject_id: uuid.UUID, restricted: bool, *, actor: Principal,
                         reason: str | None = None) -> Subject:
    subject = await session.get(Subject, subject_id, with_for_update=True)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased")
    wanted = SubjectStatus.restricted if restricted else SubjectStatus.active
    if not restricted and subject.status != SubjectStatus.restricted:
        raise Conflict("The subject's processing is not restricted")
    subject.status, subject.updated_at = wanted, utc_now()
    await session.flush()
    await audit.record(session, actor, "subject.restricted" if restricted else "subject.restriction_lifted",
                       subject_id=subject.id, target=reason[:200] if reason else None)
    return subject


async def erase(session: AsyncSession, subject_id: uuid.UUID, *, keep_purposes: set[str], retained_until: Any,
                retention_reason: str) -> tuple[Subject, int, int]:
    """Delete the subject's personal data, except items of `keep_purposes`, which stay marked with how long and
    why; the subject keeps only its id and status. Returns (subject, items deleted, items kept)."""
    subject = await session.get(Subject, subject_id, with_for_update=True)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    items = (await session.execute(select(PersonalDataItem).where(PersonalDataItem.subject_id == subject.id))).scalars().all()
    kept = 0
    for item in items:
        if item.purpose in keep_purposes:
            item.retained_until, item.retention_reason = retained_until(item.collected_at), retention_reason
            kept += 1
        else:
            await session.delete(item)
    await session.execute(delete(SubjectContact).where(SubjectContact.subject_id == subject.id))
    now = utc_now()
    subject.email = subject.email_hash = subject.name = subject.external_ref = None
    subject.status, subject.erased_at, subject.updated_at = SubjectStatus.erased, now, now
    await session.flush()
    return subject, len(items) - kept, kept


# --- what the retention sweep reads and does -----------------------------------------------------------------


async def retention_page(session: AsyncSession, after: uuid.UUID | None, limit: int) -> Sequence[Any]:
    """The next subjects (by id) that may still hold identifiable data: id, status, relationship end."""
    statement = select(Subject.id, Subject.status, Subject.relationship_ended_at).where(Subject.anonymized_at.is_(None))
    if after is not None:
        statement = statement.where(Subject.id > after)
    return (await session.execute(statement.order_by(Subject.id).limit(limit))).all()


async def retention_items(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The not-yet-anonymized items of these subjects: only what the rules need, never the values."""
    items = PersonalDataItem.__table__
    return (await session.execute(
        select(items.c.id, items.c.subject_id, items.c.purpose, items.c.category, items.c.collected_at,
               items.c.retained_until).where(among(session, items.c.subject_id, subject_ids),
                                             items.c.anonymized_at.is_(None)))).all()


async def delete_items(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    if item_ids:
        await session.execute(delete(PersonalDataItem).where(among(session, PersonalDataItem.id, item_ids)))


async def anonymize_items(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    """No value left, and the collection date only to the month: what remains counts, it identifies no one."""
    if not item_ids:
        return
    items = (await session.execute(select(PersonalDataItem).where(among(session, PersonalDataItem.id, item_ids)))).scalars()
    now = utc_now()
    for item in items:
        item.value = item.ciphertext = item.key_id = None
        item.collected_at = item.collected_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        item.anonymized_at = item.updated_at = now
    await session.execute(delete(SubjectContact).where(among(session, SubjectContact.item_id, item_ids)))
    await session.flush()


async def still_identifiable(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these subjects that still have an item that is not anonymized."""
    if not subject_ids:
        return set()
    rows = await session.execute(select(PersonalDataItem.subject_id).where(
        among(session, PersonalDataItem.subject_id, subject_ids), PersonalDataItem.anonymized_at.is_(None)).distinct())
    return set(rows.scalars())


async def anonymize_subject(session: AsyncSession, subject_id: uuid.UUID) -> str | None:
    """Nothing identifying stays on the subject; returns the e-mail hash it had, for others to forget too."""
    subject = await session.get(Subject, subject_id, with_for_update=True)
    assert subject is not None
    email_hash = subject.email_hash
    now = utc_now()
    subject.email = subject.email_hash = subject.name = subject.external_ref = None
    subject.status, subject.anonymized_at, subject.updated_at = SubjectStatus.erased, now, now
    subject.erased_at = subject.erased_at or now
    await session.execute(delete(SubjectContact).where(SubjectContact.subject_id == subject_id))
    await session.flush()
    return email_hash
