"""Subjects and their personal data: who may reach whom, encryption and masking of sensitive values, the
contact index (keyed hashes) that marketing matches against, and what erasure and retention do to them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal, Role, Scope
from app.catalog import service as catalog
from app.catalog.schemas import SENSITIVE_CATEGORIES, Category, Source
from app.core.db import transaction
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.time import utc_now
from app.notices import service as notices
from app.notices.schemas import NoticeDeliveryCreate
from app.subjects import repository
from app.subjects.models import PersonalDataItem
from app.subjects.models import Subject as Subject  # re-exported for other domains
from app.subjects.models import SubjectContact as SubjectContact  # re-exported for marketing
from app.subjects.schemas import ContactProof, DataItemCreate, DataItemRead, SubjectCreate, SubjectStatus

CONTACT_KINDS = (Category.email, Category.phone)


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


async def reach(
    session: AsyncSession, subject_id: uuid.UUID, caller: Principal, *, lock: bool = False
) -> Subject:
    """The subject, if the caller may reach it (else 404, see check_reach); `lock`: its row locked until the
    transaction ends."""
    check_reach(subject_id, caller)
    subject = await repository.get(session, subject_id, lock=lock)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    return subject


async def read_subject(session: AsyncSession, subject_id: uuid.UUID, caller: Principal) -> Subject:
    subject = await reach(session, subject_id, caller)
    await audit.record(session, caller, "subject.read", subject_id=subject.id)
    return subject


async def find_by_email(session: AsyncSession, email: str) -> Subject | None:
    return await repository.find_by_email_hash(session, runtime.of(session).keys.contacts.email(email))


async def find_for_sign_in(session: AsyncSession, email: str) -> Subject | None:
    """Who signs in to the privacy center with this address: the subject registered with it, or else an erased
    subject that had it, while the law keeps some of its items (the person may see what is kept, and why)."""
    email_hash = runtime.of(session).keys.contacts.email(email)
    # Both lookups whatever the first finds: the time taken must not tell a registered address from another.
    found = await repository.find_by_email_hash(session, email_hash)
    erased = await repository.find_erased_with_kept_items(session, email_hash)
    return found or erased


async def any_registered(session: AsyncSession) -> bool:
    return await repository.any_registered(session)


async def create_subject(session: AsyncSession, data: SubjectCreate, *, actor: Principal) -> Subject:
    await transaction(session)
    email_hash = runtime.of(session).keys.contacts.email(data.email)
    existing = await repository.find_by_email_hash(session, email_hash)
    if existing is None:
        now, subject_id = utc_now(), uuid.uuid4()
        if await repository.insert(
            session,
            {
                "id": subject_id,
                "email": data.email,
                "email_hash": email_hash,
                "access_email_hash": None,
                "name": data.name,
                "external_ref": data.external_ref,
                "status": SubjectStatus.active,
                "created_at": now,
                "updated_at": now,
                "relationship_ended_at": None,
                "erased_at": None,
                "anonymized_at": None,
            },
        ):
            await repository.insert_contact(
                session,
                {
                    "contact_hash": email_hash,
                    "subject_id": subject_id,
                    "kind": Category.email,
                    "item_id": None,
                    # Staff registered the subject with it, and every login proves it again (sign_in).
                    "verified_at": now,
                    "verified_by": ContactProof.registration,
                    "verified_reason": None,
                },
            )
            notice = await notices.at_registration(
                session,
                subject_id,
                from_subject=data.source != Source.public_register,
                language=data.notice_language,
                now=now,
                actor=actor,
            )
            await audit.record(session, actor, "subject.created", subject_id=subject_id, writes=notice)
            return await reach(session, subject_id, actor)
        existing = await repository.find_by_email_hash(session, email_hash)  # a concurrent registration won
    raise DuplicateSubject(
        "A subject with this e-mail address already exists",
        **({"existing_id": str(existing.id)} if existing else {}),
    )


async def notice_deliveries(
    session: AsyncSession, subject_id: uuid.UUID, *, caller: Principal
) -> Sequence[notices.NoticeDelivery]:
    """Which privacy notice versions the subject was given, when and how (staff, or the subject itself)."""
    subject = await reach(session, subject_id, caller)
    deliveries = await notices.deliveries(session, subject.id)
    await audit.record(session, caller, "notice.deliveries_read", subject_id=subject.id)
    return deliveries


async def notice_delivery(
    session: AsyncSession, subject_id: uuid.UUID, delivery_id: uuid.UUID, *, caller: Principal
) -> notices.NoticeDelivery:
    subject = await reach(session, subject_id, caller)
    for delivery in await notices.deliveries(session, subject.id):
        if delivery.id == delivery_id:
            return delivery
    raise NotFound("No such notice delivery")


async def give_notice(
    session: AsyncSession, subject_id: uuid.UUID, data: NoticeDeliveryCreate, *, actor: Principal
) -> tuple[notices.NoticeDelivery, list[Mail]]:
    """Staff give the subject the notice (at the first contact, or mailed now): notices.record."""
    subject = await reach(session, subject_id, actor)
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased")
    return await notices.record(session, subject.id, subject.email, data, actor=actor)


async def search_subjects(
    session: AsyncSession,
    *,
    caller: Principal,
    email: str | None,
    external_ref: str | None,
    status: SubjectStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Subject], str | None]:
    await transaction(session)
    email_hash = runtime.of(session).keys.contacts.email(email) if email is not None else None
    subjects, next_cursor = await repository.search(
        session, email_hash=email_hash, external_ref=external_ref, status=status, limit=limit, cursor=cursor
    )
    await audit.record_each(session, caller, "subject.read", (s.id for s in subjects))
    return subjects, next_cursor


async def end_relationship(
    session: AsyncSession, subject_id: uuid.UUID, ended_at: datetime | None, *, actor: Principal
) -> Subject:
    """Record the end of the customer relationship (retention clocks start). Repeating it changes nothing."""
    await transaction(session)
    subject = await reach(session, subject_id, actor, lock=True)
    if subject.relationship_ended_at is not None:
        return subject
    now = utc_now()
    if ended_at is not None and ended_at > now:
        raise Unprocessable("The relationship cannot end in the future", loc=["body", "ended_at"])
    await repository.update_subject(
        session, subject.id, relationship_ended_at=ended_at or now, updated_at=now
    )
    await audit.record(session, actor, "subject.relationship_ended", subject_id=subject.id)
    return await reach(session, subject.id, actor)


# --- the register ------------------------------------------------------------------------------------------


def mask(value: str) -> str:
    """The last 4 digits, and only when at least 4 more stay hidden; a shorter value shows nothing."""
    digits = re.sub(r"\D", "", value)
    return "****" + digits[-4:] if len(digits) >= 8 else "****"


def _context(item_id: uuid.UUID, subject_id: uuid.UUID) -> bytes:
    return f"personal_data_item:{item_id}:{subject_id}".encode()


def _value_columns(
    session: AsyncSession, item_id: uuid.UUID, subject_id: uuid.UUID, category: str, value: str
) -> dict[str, Any]:
    """The columns holding a value: encrypted for sensitive categories (bound to the row), plain otherwise."""
    if category in SENSITIVE_CATEGORIES:
        key_id, ciphertext = runtime.of(session).keys.cipher.encrypt(
            value, context=_context(item_id, subject_id)
        )
        return {"value": None, "key_id": key_id, "ciphertext": ciphertext}
    return {"value": value, "key_id": None, "ciphertext": None}


async def _index_contact(
    session: AsyncSession, item_id: uuid.UUID, subject_id: uuid.UUID, category: str, value: str
) -> None:
    """Keep the contact index in step with an e-mail or phone item (a value that is not a valid address or
    number is kept as data, but cannot be matched as a contact)."""
    if category not in CONTACT_KINDS:
        return
    contact_hash = _hash_of(session, category, value)
    indexed = await repository.contact_of_item(session, item_id)
    if indexed is not None and indexed.contact_hash == contact_hash:
        return  # the same address or number, written otherwise: it stays verified if it was
    await repository.delete_item_contacts(session, item_id)
    if contact_hash is not None:
        await repository.insert_contact(
            session,
            {
                "contact_hash": contact_hash,
                "subject_id": subject_id,
                "kind": category,
                "item_id": item_id,
                # A new address or number is not verified, whoever typed it (a subject can type anyone's).
                "verified_at": None,
                "verified_by": None,
                "verified_reason": None,
            },
        )


def _hash_of(session: AsyncSession, category: str, value: str) -> str | None:
    contacts = runtime.of(session).keys.contacts
    return contacts.email(value) if category == Category.email else contacts.phone(value)


def render_item(session: AsyncSession, item: PersonalDataItem, caller: Principal) -> DataItemRead:
    sensitive = item.category in SENSITIVE_CATEGORIES
    if not sensitive:
        value = item.value or ""
    else:
        assert item.ciphertext is not None and item.key_id is not None
        plain = runtime.of(session).keys.cipher.decrypt(
            item.key_id, item.ciphertext, context=_context(item.id, item.subject_id)
        )
        value = plain if caller.has(Scope.sensitive_read) else mask(plain)
    return DataItemRead(
        id=item.id,
        category=item.category,
        value=value,
        source=item.source,
        purpose=item.purpose,
        collected_at=item.collected_at,
        updated_at=item.updated_at,
        sensitive=sensitive,
        retained_until=item.retained_until,
        retention_reason=item.retention_reason,
    )


async def add_item(
    session: AsyncSession, subject_id: uuid.UUID, data: DataItemCreate, *, caller: Principal
) -> PersonalDataItem:
    await transaction(session)
    subject = await reach(session, subject_id, caller)
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased; no new data is recorded about it")
    await catalog.require_purpose(session, data.purpose, loc=["body", "purpose"])
    now, item_id = utc_now(), uuid.uuid4()
    await repository.insert_item(
        session,
        {
            "id": item_id,
            "subject_id": subject.id,
            "category": data.category,
            "source": data.source,
            "purpose": data.purpose,
            **_value_columns(session, item_id, subject.id, data.category, data.value),
            "collected_at": now,
            "updated_at": now,
            "retained_until": None,
            "retention_reason": None,
            "anonymized_at": None,
        },
    )
    await _index_contact(session, item_id, subject.id, data.category, data.value)
    await audit.record(session, caller, "personal_data.added", subject_id=subject.id, target=str(item_id))
    return await get_item(session, subject.id, item_id, caller=caller)


async def _reach_item(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, caller: Principal
) -> tuple[Subject, PersonalDataItem]:
    subject = await reach(session, subject_id, caller)
    item = await repository.get_item(session, item_id)
    if item is None or item.subject_id != subject.id:
        raise DataItemNotFound("Personal data item not found")
    return subject, item


async def get_item(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *, caller: Principal
) -> PersonalDataItem:
    return (await _reach_item(session, subject_id, item_id, caller))[1]


async def read_item(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *, caller: Principal
) -> PersonalDataItem:
    """One item, for a caller who may read the subject's data; the read is audited, as every read is."""
    subject, item = await _reach_item(session, subject_id, item_id, caller)
    await audit.record(session, caller, "personal_data.read", subject_id=subject.id, target=str(item.id))
    return item


async def list_items(
    session: AsyncSession,
    subject_id: uuid.UUID,
    *,
    caller: Principal,
    category: str | None,
    purpose: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[PersonalDataItem], str | None]:
    subject = await reach(session, subject_id, caller)
    items, next_cursor = await repository.list_items(
        session, subject.id, category=category, purpose=purpose, limit=limit, cursor=cursor
    )
    await audit.record(session, caller, "personal_data.read", subject_id=subject.id)
    return items, next_cursor


async def rectify_item(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, value: str, *, caller: Principal
) -> PersonalDataItem:
    """Replace the value; the old one is not kept anywhere."""
    await transaction(session)
    subject, item = await _reach_item(session, subject_id, item_id, caller)
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased")
    await repository.update_item(
        session,
        item.id,
        updated_at=utc_now(),
        **_value_columns(session, item.id, item.subject_id, item.category, value),
    )
    await _index_contact(session, item.id, item.subject_id, item.category, value)
    await audit.record(
        session, caller, "personal_data.rectified", subject_id=item.subject_id, target=str(item.id)
    )
    return await get_item(session, subject_id, item_id, caller=caller)


# --- contacts ----------------------------------------------------------------------------------------------


async def contact_hashes(
    session: AsyncSession, subject_id: uuid.UUID, kind: Category, *, verified_only: bool = False
) -> list[str]:
    """The keyed hashes of the subject's e-mail addresses or phone numbers: all it claims, or
    (`verified_only`) those it was shown to hold."""
    return await repository.contact_hashes(session, subject_id, kind, verified_only=verified_only)


async def verified_owners(session: AsyncSession, hashes: set[str]) -> dict[str, list[uuid.UUID]]:
    """Contact hash → the subjects that verified it as theirs, the earliest registered first. A contact that
    somebody merely typed into their register has no owner."""
    return await repository.verified_owners(session, hashes) if hashes else {}


async def item_contact(
    session: AsyncSession, subject_id: uuid.UUID, item_id: uuid.UUID, *, caller: Principal
) -> tuple[Subject, PersonalDataItem, SubjectContact]:
    """The contact an e-mail or phone item holds, if the caller reaches it; 404 for any other item, and for
    one whose value is not an address or number that can be a contact."""
    subject, item = await _reach_item(session, subject_id, item_id, caller)
    contact_hash = (
        _hash_of(session, item.category, item.value or "") if item.category in CONTACT_KINDS else None
    )
    contact = await repository.contact(session, subject.id, contact_hash) if contact_hash else None
    if contact is None:
        raise DataItemNotFound("No e-mail address or phone number of the subject's with this id")
    return subject, item, contact


async def mark_contact_verified(
    session: AsyncSession,
    subject_id: uuid.UUID,
    contact_hash: str,
    proof: ContactProof,
    *,
    reason: str | None = None,
) -> None:
    """Record that the subject was shown to hold the contact, and how (the latest proof is kept)."""
    await repository.mark_verified(session, subject_id, contact_hash, at=utc_now(), by=proof, reason=reason)


async def contact_proven_at_login(session: AsyncSession, subject_id: uuid.UUID, email_hash: str) -> None:
    """The login code went to this address and came back: the subject holds it (no row when it was erased)."""
    await mark_contact_verified(session, subject_id, email_hash, ContactProof.login)


# --- what rights requests do to the register ---------------------------------------------------------------


# What a processor needs to find the person in its own systems (an erasure task's identifiers).
IDENTIFYING = (Category.name, Category.email, Category.phone, Category.address, Category.username)


async def identifiers(session: AsyncSession, subject_id: uuid.UUID) -> dict[str, list[str]]:
    """The subject's identifying values by category (its register and its own address and name), read before
    an erasure removes them, so that the recipients' tasks can say whom to erase."""
    subject = await repository.get(session, subject_id)
    found: dict[str, set[str]] = {}
    if subject is not None:
        for category, value in ((Category.email, subject.email), (Category.name, subject.name)):
            if value:
                found.setdefault(category, set()).add(value)
    for item in await repository.items_of(session, subject_id):
        if item.category in IDENTIFYING and item.value:
            found.setdefault(item.category, set()).add(item.value)
    return {category: sorted(values) for category, values in found.items()}


async def changed_since(
    session: AsyncSession, subject_id: uuid.UUID, since: datetime
) -> list[dict[str, Any]]:
    """The items rectified (or added) since then, `{category, value, changed_at}` with their values now
    (payment data masked): what a rectification's recipients must correct."""
    caller = Principal.system("rectification")
    return [
        {
            "category": item.category,
            "value": render_item(session, item, caller).value,
            "changed_at": item.updated_at,
        }
        for item in await repository.items_of(session, subject_id)
        if item.updated_at >= since
    ]


async def set_restricted(
    session: AsyncSession,
    subject_id: uuid.UUID,
    restricted: bool,
    *,
    actor: Principal,
    reason: str | None = None,
) -> Subject:
    await transaction(session)
    subject = await repository.get(session, subject_id, lock=True)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    if subject.status == SubjectStatus.erased:
        raise SubjectErased("The subject is erased")
    if not restricted and subject.status != SubjectStatus.restricted:
        raise Conflict("The subject's processing is not restricted")
    wanted = SubjectStatus.restricted if restricted else SubjectStatus.active
    await repository.update_subject(session, subject.id, status=wanted, updated_at=utc_now())
    await audit.record(
        session,
        actor,
        "subject.restricted" if restricted else "subject.restriction_lifted",
        subject_id=subject.id,
        target=reason[:200] if reason else None,
    )
    return await reach(session, subject.id, actor)


async def erase(
    session: AsyncSession,
    subject_id: uuid.UUID,
    *,
    keep_purposes: set[str],
    retained_until: Callable[[datetime], datetime],
    retention_reason: str,
) -> tuple[int, int, str | None]:
    """Delete the subject's personal data, except items of `keep_purposes`, which stay marked with how long
    and
    why; the subject keeps only its id and status. Returns (items deleted, kept, the e-mail hash it had, for
    others to forget too)."""
    await transaction(session)
    subject = await repository.get(session, subject_id, lock=True)
    if subject is None:
        raise SubjectNotFound("Subject not found")
    items = await repository.items_of(session, subject.id)
    kept = {item.id: retained_until(item.collected_at) for item in items if item.purpose in keep_purposes}
    await repository.keep_items(session, kept, retention_reason)
    await repository.delete_items(session, [item.id for item in items if item.id not in kept])
    await repository.delete_contacts(session, subject.id)
    now = utc_now()
    await repository.forget_identity(
        session,
        subject.id,
        erased_at=now,
        updated_at=now,
        access_email_hash=subject.email_hash if kept else None,
    )
    return len(items) - len(kept), len(kept), subject.email_hash


# --- what the retention sweep reads and does
# -----------------------------------------------------------------


async def retention_page(session: AsyncSession, after: uuid.UUID | None, limit: int) -> Sequence[Any]:
    """The next subjects (by id) that may still hold identifiable data: id, status, relationship end."""
    return await repository.retention_page(session, after, limit)


async def retention_items(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> Sequence[Any]:
    """The not-yet-anonymized items of these subjects: only what the rules need, never the values."""
    return await repository.retention_items(session, subject_ids)


async def delete_items(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    await repository.delete_items(session, item_ids)


async def anonymize_items(session: AsyncSession, item_ids: Sequence[uuid.UUID]) -> None:
    await repository.anonymize_items(session, item_ids, utc_now())


async def still_identifiable(session: AsyncSession, subject_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these subjects that still have an item that is not anonymized."""
    return await repository.still_identifiable(session, subject_ids) if subject_ids else set()


async def anonymize_subject(session: AsyncSession, subject_id: uuid.UUID) -> str | None:
    """Nothing identifying stays on the subject; returns the e-mail hash it had, for others to forget too."""
    await transaction(session)
    subject = await repository.get(session, subject_id, lock=True)
    assert subject is not None
    email_hash, now = subject.email_hash, utc_now()
    await repository.forget_identity(
        session, subject_id, anonymized_at=now, updated_at=now, erased_at=subject.erased_at or now
    )
    await repository.delete_contacts(session, subject_id)
    return email_hash
