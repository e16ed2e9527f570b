"""API clients and the client-credentials grant."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.audit import service as audit
from app.auth import repository
from app.auth.models import ApiClient, LoginCode
from app.auth.principals import Principal, Role, Scope
from app.auth.schemas import ClientCreate, StaffClientCreate, TokenResponse
from app.core.crypto import hash_client_secret, new_client_secret, secret_matches, secret_matches_hash
from app.core.db import on_commit, transaction
from app.core.errors import AppError, NotFound, TooManyRequests, Unauthorized, Unprocessable
from app.core.mail import Mail
from app.core.security import mint_token
from app.core.time import utc_now
from app.processors import service as processors
from app.subjects import service as subjects
from app.visitors import service as visitors


class OAuthError(AppError):
    """RFC 6749 §5.2 error: problem+json that also carries the OAuth fields (`error`, `error_description`), so
    that OAuth clients (authlib, say) show the reason."""

    status, title, slug = 400, "Token request refused", "oauth-error"

    def __init__(self, error: str, detail: str, *, status: int = 400) -> None:
        super().__init__(detail, error=error, error_description=detail)
        self.status = status
        if status == 401:
            self.headers = {"WWW-Authenticate": 'Basic realm="wesafe-privacy"'}


class ClientNotFound(NotFound):
    title = "API client not found"


# Scopes whose grant to a new client is recorded as a privileged action: unmasked sensitive data, and
# administration (which includes minting more clients).
PRIVILEGED_SCOPES = frozenset({Scope.sensitive_read, Scope.admin})


async def create_client(
    session: AsyncSession, data: ClientCreate, *, actor: Principal
) -> tuple[ApiClient, str]:
    if not isinstance(data, StaffClientCreate):
        try:
            processor = await processors.get_processor(session, data.processor_id)
        except NotFound:
            raise Unprocessable("No processor with this id", loc=["body", "processor_id"]) from None
        if processor.ended_at is not None:
            raise Unprocessable("This processor has ended: it gets no clients", loc=["body", "processor_id"])
    await transaction(session)
    secret, client_id = new_client_secret(), uuid.uuid4()
    await repository.insert_client(
        session,
        {
            "id": client_id,
            "name": data.name,
            "role": data.role,
            "scopes": sorted(str(s) for s in data.scopes) if isinstance(data, StaffClientCreate) else [],
            "processor_id": None if isinstance(data, StaffClientCreate) else data.processor_id,
            "secret_hash": hash_client_secret(secret),
            "created_by": actor.sub,
            "created_at": utc_now(),
            "revoked_at": None,
        },
    )
    await audit.record(session, actor, "client.created", target=str(client_id))
    for scope in sorted(PRIVILEGED_SCOPES & set(data.scopes if isinstance(data, StaffClientCreate) else ())):
        # Minting a client that may see sensitive data unmasked, or mint clients itself, is a privileged act:
        # an event of its own, which an audit query for the action finds (docs/security.md).
        await audit.record(session, actor, "client.privileged_scope_granted", target=f"{client_id} {scope}")
    client = await repository.get_client(session, client_id)
    assert client is not None
    return client, secret


async def list_clients(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[ApiClient], str | None]:
    return await repository.list_clients(session, limit=limit, cursor=cursor)


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> ApiClient:
    client = await repository.get_client(session, client_id)
    if client is None:
        raise ClientNotFound("No API client with this id")
    return client


async def revoke_client(session: AsyncSession, client_id: uuid.UUID, *, actor: Principal) -> None:
    """Revoked clients get no new tokens, and the tokens already issued to them are refused from the commit on
    (auth.revocation: this worker drops its copy of the revoked set on commit, the others when notified)."""
    await transaction(session)
    client = await repository.get_client(session, client_id)
    if client is None:
        raise ClientNotFound("No API client with this id")
    if client.revoked_at is None:
        await repository.revoke_client(session, client.id, utc_now())
        on_commit(session, runtime.of(session).revoked_clients.invalidate)
        await audit.record(session, actor, "client.revoked", target=str(client.id))


async def issue_token(
    session: AsyncSession,
    *,
    grant_type: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> TokenResponse:
    if grant_type is None:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Only the client_credentials grant is supported")
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "Client authentication failed", status=401)
    try:
        client = await repository.get_client(session, uuid.UUID(client_id))
    except ValueError:
        client = None
    if (
        client is None
        or client.revoked_at is not None
        or not secret_matches(client_secret, client.secret_hash)
    ):
        raise OAuthError("invalid_client", "Client authentication failed", status=401)
    if client.processor_id is not None:
        processor = await processors.get_processor(session, client.processor_id)
        if processor.ended_at is not None:  # processors.end_processor: its clients get no more tokens
            raise OAuthError(
                "invalid_client", "Client authentication failed: its processor has ended", status=401
            )

    scopes = list(client.scopes)
    if scope is not None:
        asked = scope.split()
        if not set(asked) <= set(client.scopes):
            raise OAuthError("invalid_scope", "The requested scope exceeds the client's scopes")
        scopes = sorted(set(asked))
    sub = str(client.processor_id) if client.role == Role.processor else str(client.id)
    settings = runtime.of(session).settings
    token = mint_token(
        settings, role=client.role, sub=sub, scopes=scopes, extra={"client_id": str(client.id)}
    )
    return TokenResponse(
        access_token=token, expires_in=settings.access_token_ttl_seconds, scope=" ".join(scopes) or None
    )


# --- the privacy center's login: a one-time code by e-mail --------------------------------------------------

CODE_LIFETIME = timedelta(minutes=10)
CODE_ATTEMPTS = 5
RATE_WINDOW = timedelta(minutes=15)
# (kind, per address, per IP) within the window.
RATE_LIMITS = {"request": (5, 30), "verify": (10, 60)}


class LoginRefused(Unauthorized):
    """Wrong, expired, used-up or unknown: one answer for all, so that it tells nothing. The attempt counts:
    the route commits before it answers."""

    title = "Login refused"


async def purge_expired_logins(session: AsyncSession) -> dict[str, int]:
    """Delete login attempts older than the rate-limit window (they count for nothing any more) and codes past
    their lifetime (they open nothing): both hold hashes of addresses, kept no longer than they serve."""
    now = utc_now()
    return await repository.purge(session, attempts_before=now - RATE_WINDOW, codes_expired_before=now)


async def _count_attempt(session: AsyncSession, kind: str, email: str, ip: str) -> str:
    """Record the attempt, or refuse it past the rate limits (per address and per IP, known or not; and for a
    code request, the ceiling across all addresses). The caller's transaction holds the address's and the
    IP's lock from here on, so racing requests count each other exactly."""
    state = runtime.of(session)
    contacts = state.keys.contacts
    email_hash, ip_hash = contacts.email(email), contacts.hash(f"ip:{ip}")
    await repository.lock_login(session, email_hash=email_hash, ip_hash=ip_hash)
    per_email, per_ip = RATE_LIMITS[kind]
    by_email, by_ip = await repository.attempts_since(
        session, kind, email_hash=email_hash, ip_hash=ip_hash, since=utc_now() - RATE_WINDOW
    )
    if by_email >= per_email or by_ip >= per_ip:
        raise TooManyRequests(
            "Too many attempts; wait a while and try again", retry_after=int(RATE_WINDOW.total_seconds())
        )
    if kind == "request":  # last: a request refused above takes no share of the ceiling
        state.login_codes.take("Too many codes are being sent just now; wait a minute and try again")
    await repository.add_attempt(
        session,
        {"id": uuid.uuid4(), "kind": kind, "email_hash": email_hash, "ip_hash": ip_hash, "at": utc_now()},
    )
    return email_hash


def _code_hash(session: AsyncSession, email_hash: str, code: str) -> str:
    return runtime.of(session).keys.contacts.hash(f"login-code:{email_hash}:{code}")


async def _issue_code(
    session: AsyncSession, email_hash: str, purpose: str, subject_id: uuid.UUID | None
) -> str:
    """A fresh six-digit code for the address (its earlier codes stop working)."""
    now = utc_now()
    await repository.retire_codes(session, email_hash, now)
    code = f"{secrets.randbelow(10**6):06d}"
    await repository.add_code(
        session,
        {
            "id": uuid.uuid4(),
            "email_hash": email_hash,
            "purpose": purpose,
            "subject_id": subject_id,
            "code_hash": _code_hash(session, email_hash, code),
            "created_at": now,
            "expires_at": now + CODE_LIFETIME,
            "attempts": 0,
            "used_at": None,
        },
    )
    return code


def _code_mail(to: str, title: str, code: str, sv: str, en: str) -> Mail:
    return Mail(
        to=to,
        subject=title,
        body=(
            f"{sv}: {code}\nDen gäller i 10 minuter. Har du inte bett om den kan du bortse från det här "
            f"meddelandet.\n\n{en}: {code}\nIt is valid for 10 minutes. If you did not ask for it, you can "
            "ignore this message.\n\nWeSafe IT, dataskydd@wesafe.se"
        ),
    )


async def request_login_code(session: AsyncSession, email: str, *, ip: str) -> Mail | None:
    """A login code for a registered subject (or an erased one whose kept items it may still see), as a mail
    to send; None for an address we do not know. The caller answers the same in both cases, and as fast: the
    database work is the same."""
    await transaction(session)
    email_hash = await _count_attempt(session, "request", email, ip)
    subject = await subjects.find_for_sign_in(session, email)
    # Known or not, the same work, so that the time taken tells nothing: an unknown address gets a code too,
    # stored and never sent, that signs nobody in (sign_in refuses a code without a subject).
    code = await _issue_code(session, email_hash, "login", subject.id if subject else None)
    # The address as registered; an erased subject's is gone, and the one typed matched its hash.
    mail = _code_mail(
        (subject.email if subject else None) or email.strip(),
        "Din inloggningskod / Your login code",
        code,
        "Din kod till WeSafes integritetscenter",
        "Your code for WeSafe's privacy center",
    )
    return mail if subject is not None else None


async def request_proof_code(
    session: AsyncSession,
    email: str,
    *,
    ip: str,
    purpose: str = "proof",
    subject_id: uuid.UUID | None = None,
    wording: tuple[str, str] = (
        "Din kod för att skicka en begäran till WeSafe",
        "Your code for sending a request to WeSafe",
    ),
) -> Mail:
    """A code that proves the person holds the address, known or not (the privacy center's form for people
    who are not registered; marketing's contact verification, `purpose` "contact"); it signs nobody in."""
    await transaction(session)
    email_hash = await _count_attempt(session, "request", email, ip)
    code = await _issue_code(session, email_hash, purpose, subject_id)
    return _code_mail(email.strip(), "Din kod / Your code", code, *wording)


async def _redeem(session: AsyncSession, email: str, code: str, purpose: str, ip: str) -> LoginCode:
    """The code, used up, if it is right; LoginRefused otherwise, after the attempt has been counted (the
    caller commits it before answering)."""
    await transaction(session)
    email_hash = await _count_attempt(session, "verify", email, ip)
    now = utc_now()
    login = await repository.live_code(session, email_hash, purpose, now)
    if login is None:
        raise LoginRefused("The code is wrong or no longer valid; ask for a new one")
    attempts = login.attempts + 1
    if not secret_matches_hash(_code_hash(session, email_hash, code), login.code_hash):
        await repository.update_code(
            session, login.id, attempts=attempts, used_at=now if attempts >= CODE_ATTEMPTS else None
        )  # used up
        raise LoginRefused("The code is wrong or no longer valid; ask for a new one")
    await repository.update_code(session, login.id, attempts=attempts, used_at=now)
    return login


async def sign_in(
    session: AsyncSession, email: str, code: str, *, ip: str, visitor_id: str | None = None
) -> uuid.UUID:
    """The subject that the right login code signs in (audited), with the device it came from linked."""
    login = await _redeem(session, email, code, "login", ip)
    if login.subject_id is None:  # a code issued to an unknown address: never sent, so only guessed
        raise LoginRefused("The code is wrong or no longer valid; ask for a new one")
    await audit.record(
        session,
        Principal(role=Role.subject, sub=str(login.subject_id)),
        "subject.logged_in",
        subject_id=login.subject_id,
    )
    await subjects.contact_proven_at_login(session, login.subject_id, login.email_hash)  # marketing's proof
    if visitor_id is not None:
        await visitors.link_at_login(session, visitor_id, login.subject_id)
    return login.subject_id


async def verify_login_code(
    session: AsyncSession, email: str, code: str, *, ip: str, visitor_id: str | None = None
) -> TokenResponse:
    """A subject token for the right login code."""
    subject_id = await sign_in(session, email, code, ip=ip, visitor_id=visitor_id)
    settings = runtime.of(session).settings
    token = mint_token(
        settings, role=Role.subject, sub=str(subject_id), ttl_seconds=settings.subject_token_ttl_seconds
    )
    return TokenResponse(access_token=token, expires_in=settings.subject_token_ttl_seconds)


async def verify_proof_code(
    session: AsyncSession, email: str, code: str, *, ip: str, purpose: str = "proof"
) -> LoginCode:
    """The right proof code, used up (whom it was issued for: `subject_id`); LoginRefused otherwise."""
    return await _redeem(session, email, code, purpose, ip)


async def forget_logins(session: AsyncSession, email_hash: str | None) -> None:
    """Login codes and attempts are keyed by a hash of the address, which a known address would reproduce."""
    if email_hash:
        await transaction(session)
        await repository.forget(session, email_hash)
