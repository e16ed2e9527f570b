"""The privacy notice reaching people (GDPR Art. 13 and 14): which version each subject was given, when and
how; who is still owed one; mailing it.

- Registration records the notice in force as given `at_collection` (Art. 13) when the data came from the
  subject; when it came from elsewhere (a public register), the subject is owed the notice within one
  calendar month (Art. 14(3)(a)).
- A new notice version that changes sections concerning a subject makes it owed the new version
  (catalog.service calls `owe_changed`).
- Staff mail what is owed in bounded batches (`mail_owed`), or record a notice given at the first contact.

This domain imports no other domain's service: subjects and the catalog call it, and it reads their tables
only through its repository's read models."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import runtime
from app.audit import service as audit
from app.auth.principals import Principal
from app.core.db import transaction, unit_of_work
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.mail import Mail
from app.core.sql import Write, write
from app.core.time import add_months, utc_now
from app.notices import mails, repository
from app.notices.models import NoticeDelivery as NoticeDelivery  # re-exported for subjects
from app.notices.models import NoticeDue
from app.notices.schemas import DeliveryMethod, DueReason, MailingResult, NoticeDeliveryCreate

# At most this many notices mailed by one call: a mailing never outlasts a request's time.
MAILING_BATCH = 100


async def _in_force(session: AsyncSession, now: datetime) -> str:
    version = (await runtime.of(session).catalog.current(session)).notice_in_force(now)
    if version is None:
        raise NotFound("No privacy notice is in force yet")
    return version


async def at_registration(
    session: AsyncSession,
    subject_id: uuid.UUID,
    *,
    from_subject: bool,
    language: str,
    now: datetime,
    actor: Principal,
) -> list[Write]:
    """What registering a subject writes about its notice: the delivery of the version in force (the data
    came from the subject), or the notice owed within one month (it did not). No notice in force yet: owed."""
    version = (await runtime.of(session).catalog.current(session)).notice_in_force(now)
    if from_subject and version is not None:
        return [
            repository.delivery(
                {
                    "id": uuid.uuid4(),
                    "subject_id": subject_id,
                    "version": version,
                    "language": language,
                    "method": DeliveryMethod.at_collection,
                    "delivered_at": now,
                    "recorded_by": actor.sub,
                }
            )
        ]
    return [
        repository.due(
            {
                "subject_id": subject_id,
                "reason": DueReason.not_from_subject,
                "version": None,
                "due_at": add_months(now, 1),
                "created_at": now,
            }
        )
    ]


async def deliveries(session: AsyncSession, subject_id: uuid.UUID) -> Sequence[NoticeDelivery]:
    """A subject's notices, newest first (the caller has checked reach and audits the read)."""
    return await repository.deliveries_of(session, subject_id)


async def record(
    session: AsyncSession,
    subject_id: uuid.UUID,
    email: str | None,
    data: NoticeDeliveryCreate,
    *,
    actor: Principal,
) -> tuple[NoticeDelivery, list[Mail]]:
    """Staff give a subject the notice: recorded as given at the first contact, or mailed (after the commit).
    Either settles what the subject is owed. The caller has checked reach and that it is not erased."""
    if data.method == DeliveryMethod.at_collection:
        raise Unprocessable(
            "Registration records the notice given at collection; record `first_contact` or `mail`",
            loc=["body", "method"],
        )
    now = utc_now()
    snapshot = await runtime.of(session).catalog.current(session)
    if data.version is not None and not snapshot.has_notice(data.version):
        raise Unprocessable(f"No privacy notice version {data.version!r}", loc=["body", "version"])
    version = data.version or await _in_force(session, now)
    if data.method == DeliveryMethod.mail and not email:
        raise Conflict("The subject has no e-mail address to mail the notice to")
    await transaction(session)
    delivery_id = uuid.uuid4()
    values = {
        "id": delivery_id,
        "subject_id": subject_id,
        "version": version,
        "language": data.language,
        "method": data.method,
        "delivered_at": now,
        "recorded_by": actor.sub,
    }
    await write(session, repository.delivery(values))
    owed = await repository.due_of(session, subject_id)
    await repository.clear_due(session, [subject_id])
    await audit.record(session, actor, f"notice.{data.method}", subject_id=subject_id, target=version)
    sent = []
    if data.method == DeliveryMethod.mail:
        assert email is not None
        settings = runtime.of(session).settings
        sent.append(
            mails.notice(
                email,
                reason=owed.reason if owed else None,
                version=version,
                language=data.language,
                base_url=settings.public_base_url,
                contact=settings.controller_email,
            )
        )
    delivery = await repository.get_delivery(session, delivery_id)
    assert delivery is not None
    return delivery, sent


async def owed(
    session: AsyncSession,
    *,
    overdue: bool,
    subject_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    actor: Principal,
) -> tuple[Sequence[NoticeDue], str | None]:
    """Who is owed the notice, soonest due first (staff)."""
    rows, next_cursor = await repository.due_page(
        session, before=utc_now() if overdue else None, subject_id=subject_id, limit=limit, cursor=cursor
    )
    await audit.record(session, actor, "notice.due_listed", subject_id=subject_id)
    return rows, next_cursor


async def mail_owed(
    session: AsyncSession, *, limit: int = MAILING_BATCH, actor: Principal
) -> tuple[MailingResult, list[Mail]]:
    """Mail the next `limit` owed notices (soonest due first), each in the language the subject was last given
    a notice in (Swedish if none), record each as a delivery and settle it. A subject erased meanwhile, or
    without an address, is dropped from the list. The mails go out after the commit."""
    await transaction(session)
    now = utc_now()
    in_force = (await runtime.of(session).catalog.current(session)).notice_in_force(now)
    settings = runtime.of(session).settings
    batch = await repository.mailing_batch(session, limit)
    sent: list[Mail] = []
    writes: list[Write] = []
    settled: list[uuid.UUID] = []
    audited: list[tuple[uuid.UUID | None, str, str | None]] = []
    for row in batch:
        version = row["version"] or in_force
        if version is None:
            continue  # nothing to give yet: stays owed
        settled.append(row["subject_id"])
        if row["status"] == "erased" or not row["email"]:
            continue
        language = row["language"] or "sv"
        writes.append(
            repository.delivery(
                {
                    "id": uuid.uuid4(),
                    "subject_id": row["subject_id"],
                    "version": version,
                    "language": language,
                    "method": DeliveryMethod.mail,
                    "delivered_at": now,
                    "recorded_by": actor.sub,
                }
            )
        )
        audited.append((row["subject_id"], "notice.mail", version))
        sent.append(
            mails.notice(
                row["email"],
                reason=row["reason"],
                version=version,
                language=language,
                base_url=settings.public_base_url,
                contact=settings.controller_email,
            )
        )
    if writes:
        await write(session, *writes)
    await repository.clear_due(session, settled)
    await audit.record_many(session, actor, audited)
    remaining = await repository.count_due(session)
    return MailingResult(mailed=len(sent), skipped=len(settled) - len(sent), remaining=remaining), sent


async def mail_all_owed(
    sessions: async_sessionmaker[AsyncSession], *, batch: int = MAILING_BATCH, actor: Principal
) -> MailingResult:
    """Everything owed, batch by batch (`privacy notices mail`, for a scheduler): each batch is its own
    transaction, and its mails are sent once it has committed. Stops when nothing is owed, or when a batch
    settles nothing (no notice in force yet)."""
    mailed = skipped = 0
    while True:
        async with unit_of_work(sessions) as session:
            result, sent = await mail_owed(session, limit=batch, actor=actor)
            mailer = runtime.of(session).mailer
        for mail in sent:
            await mailer.send(mail)
        mailed, skipped = mailed + result.mailed, skipped + result.skipped
        if result.remaining == 0 or result.mailed + result.skipped == 0:
            return MailingResult(mailed=mailed, skipped=skipped, remaining=result.remaining)


async def owe_changed(
    session: AsyncSession, *, version: str, effective_from: datetime, purposes: Sequence[str] | None
) -> int:
    """A new version changed sections concerning the subjects of `purposes` (None: everyone): each is owed
    it, due when it takes effect. One statement, however many subjects."""
    return await repository.owe_changed_notice(
        session, version=version, due_at=effective_from, now=utc_now(), purposes=purposes
    )
