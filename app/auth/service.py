"""API clients and the client-credentials grant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.models import ApiClient
from app.auth.schemas import ClientCreate, StaffClientCreate, TokenResponse
from app.core.config import Settings
from app.core.crypto import hash_client_secret, new_client_secret, secret_matches
from app.core.errors import AppError, NotFound, Unprocessable
from app.core.pagination import paginate
from app.core.security import Principal, Role, mint_token
from app.core.time import utc_now
from app.processors import service as processors


class OAuthError(AppError):
    """RFC 6749 §5.2 error, as problem+json with the OAuth `error` code alongside."""

    status, title, slug = 400, "Token request refused", "oauth-error"

    def __init__(self, error: str, detail: str, *, status: int = 400) -> None:
        super().__init__(detail, error=error)
        self.status = status
        if status == 401:
            self.headers = {"WWW-Authenticate": 'Basic realm="wesafe-privacy"'}


class ClientNotFound(NotFound):
    title = "API client not found"


async def create_client(session: AsyncSession, data: ClientCreate, *, actor: Principal) -> tuple[ApiClient, str]:
    if not isinstance(data, StaffClientCreate):
        try:
            await processors.get_processor(session, data.processor_id)
        except NotFound:
            raise Unprocessable("No processor with this id", loc=["body", "processor_id"]) from None
    secret = new_client_secret()
    client = ApiClient(name=data.name, role=data.role, secret_hash=hash_client_secret(secret), created_by=actor.sub)
    if isinstance(data, StaffClientCreate):
        client.scopes = sorted(str(s) for s in data.scopes)
    else:
        client.processor_id = data.processor_id
    session.add(client)
    await session.flush()
    await audit.record(session, actor, "client.created", target=str(client.id))
    return client, secret


async def list_clients(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[Sequence[ApiClient], str | None]:
    return await paginate(session, select(ApiClient), order=(ApiClient.created_at, ApiClient.id), limit=limit,
                          cursor=cursor, key_type=uuid.UUID)


async def revoke_client(session: AsyncSession, client_id: uuid.UUID, *, actor: Principal) -> None:
    """Revoked clients get no new tokens; tokens already issued run out within their short lifetime."""
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise ClientNotFound("No API client with this id")
    if client.revoked_at is None:
        client.revoked_at = utc_now()
        await session.flush()
        await audit.record(session, actor, "client.revoked", target=str(client.id))


async def issue_token(session: AsyncSession, settings: Settings, *, grant_type: str | None, client_id: str | None,
                      client_secret: str | None, scope: str | None) -> TokenResponse:
    if grant_type is None:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Only the client_credentials grant is supported")
    if not client_id or not client_secret:
        raise OAuthError("invalid_client", "Client authentication failed", status=401)
    try:
        client = await session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        client = None
    if client is None or client.revoked_at is not None or not secret_matches(client_secret, client.secret_hash):
        raise OAuthError("invalid_client", "Client authentication failed", status=401)

    scopes = list(client.scopes)
    if scope is not None:
        asked = scope.split()
        if not set(asked) <= set(client.scopes):
            raise OAuthError("invalid_scope", "The requested scope exceeds the client's scopes")
        scopes = sorted(set(asked))
    sub = str(client.processor_id) if client.role == Role.processor else str(client.id)
    token = mint_token(settings, role=client.role, sub=sub, scopes=scopes, extra={"client_id": str(client.id)})
    return TokenResponse(access_token=token, expires_in=settings.access_token_ttl_seconds,
                         scope=" ".join(scopes) or None)
