"""The privacy center's sessions and form tokens.

The browser holds one random token in an HttpOnly cookie. A person who has signed in (or, without an account,
proved an address) has a session row under the token's SHA-256: it ends 15 minutes after the last page, or
8 hours after signing in, or when the person signs out (the row is deleted, so the token opens nothing). A
new token is issued whenever a session starts or ends, so that a token seen before signing in is worth
nothing after.

Every form carries a token derived from the cookie's by HMAC with a key of the service's own (the signed
double-submit pattern): a page on another site can neither read the cookie nor compute the token, and the
cookie is SameSite=Strict besides. Nothing needs storing for people who have not signed in."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.auth.principals import Principal
from app.core.errors import AppError
from app.core.time import utc_now
from app.privacy_center import repository

IDLE = timedelta(minutes=15)
LIFETIME = timedelta(hours=8)
PROOF_LIFETIME = timedelta(minutes=30)
# A session seen this recently is not written to again (renewal costs a write per page otherwise).
TOUCH_EVERY = timedelta(seconds=60)
CENTER = Principal.system("privacy-center")


class FormRefused(AppError):
    """A form without the token of the page it came from: nothing was done."""

    status, title, slug = 403, "Form refused", "form-refused"


@dataclass(frozen=True, slots=True)
class Person:
    """Who is at the privacy center (by the cookie's token): nobody known yet, a signed-in subject, or a
    person who proved an address. Not a website visitor of app.visitors."""

    token: str
    subject_id: uuid.UUID | None = None
    email: str | None = None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _form_key(session: AsyncSession) -> bytes:
    # Derived from the service's hash key, so that a form token can never pass for anything else it signs.
    key = runtime.of(session).settings.hash_key.get_secret_value().encode()
    return hmac.new(key, b"privacy-center-forms", hashlib.sha256).digest()


def form_token(session: AsyncSession, token: str) -> str:
    return hmac.new(_form_key(session), token.encode(), hashlib.sha256).hexdigest()


def check_form(session: AsyncSession, token: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(form_token(session, token), sent):
        raise FormRefused("The form did not come from this page, or has expired; nothing was changed")


async def person(session: AsyncSession, token: str | None) -> Person:
    """Who holds this cookie token (a fresh token for a browser that has none), renewing a live session."""
    if not token:
        return Person(token=new_token())
    now = utc_now()
    found = await repository.find(session, _hash(token), now=now, idle_since=now - IDLE)
    if found is None:
        return Person(token=token)
    if now - found.last_seen_at > TOUCH_EVERY:
        await repository.touch(session, found.id, now)
    return Person(token=token, subject_id=found.subject_id, email=found.email)


async def _start(session: AsyncSession, old: str, *, subject_id: uuid.UUID | None, email: str | None) -> str:
    await repository.end(session, _hash(old))
    token, now = new_token(), utc_now()
    await repository.add(
        session,
        {
            "id": uuid.uuid4(),
            "token_hash": _hash(token),
            "subject_id": subject_id,
            "email": email,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + (LIFETIME if subject_id else PROOF_LIFETIME),
        },
    )
    return token


async def start_session(session: AsyncSession, old: str, subject_id: uuid.UUID) -> str:
    """A signed-in session under a new token (the old one is worth nothing from now on)."""
    return await _start(session, old, subject_id=subject_id, email=None)


async def start_proof(session: AsyncSession, old: str, email: str) -> str:
    """A session for a person who proved they hold `email`: it may file requests, and see nothing."""
    return await _start(session, old, subject_id=None, email=email)


async def end_session(session: AsyncSession, token: str) -> str:
    """Signing out: the session is gone from the database, and the browser gets a new, empty token."""
    await repository.end(session, _hash(token))
    return new_token()


async def purge_expired(session: AsyncSession) -> int:
    now = utc_now()
    return await repository.purge(session, now=now, idle_since=now - IDLE)
