from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, BackgroundTasks, Body, Form, Header, Request, Response

from app.auth import service
from app.auth.deps import Admin
from app.auth.schemas import (
    ClientCreate,
    ClientCreated,
    ClientRead,
    LoginRequest,
    LoginSent,
    LoginVerify,
    TokenRequest,
    TokenResponse,
)
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page
from app.core.ratelimit import client_address
from app.core.responses import created
from app.runtime import RuntimeDep

router = APIRouter(tags=["auth"])
FORM = "application/x-www-form-urlencoded"


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id), unquote(secret)


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=problems(400, 401, 413, 415, 422),
    summary="Exchange client credentials for an access token",
    description="OAuth 2.0 client credentials grant (RFC 6749 §4.4), form-encoded (another body type: 415). "
    "Credentials in the form (`client_id`, `client_secret`) or as HTTP Basic. Failures are problem details "
    "that also carry RFC 6749 §5.2's `error` (`invalid_request`, `invalid_client`, "
    "`unsupported_grant_type`, `invalid_scope`) and `error_description`.",
)
async def issue_token(
    form: Annotated[TokenRequest, Form()],
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TokenResponse:
    if content_type is not None and not content_type.lower().startswith(FORM):
        raise service.OAuthError(
            "invalid_request",
            f"Send the token request as {FORM} (RFC 6749 §4.4), not as {content_type.split(';')[0]}",
            status=415,
        )
    basic_id, basic_secret = _basic_credentials(authorization)
    return await service.issue_token(
        session,
        grant_type=form.grant_type,
        client_id=basic_id or form.client_id,
        client_secret=basic_secret or form.client_secret,
        scope=form.scope,
    )


@router.post(
    "/auth/subject-login",
    status_code=202,
    response_model=LoginSent,
    responses=problems(*BODY, 429),
    summary="Ask for a one-time login code by e-mail (the privacy center)",
    description="Sends a six-digit code, valid 10 minutes, to a registered subject's address. The answer "
    "is the same whether or not the address is known. Rate limited per address and per IP.",
)
async def request_login_code(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
) -> LoginSent:
    mail = await service.request_login_code(session, body.email, ip=client_address(request))
    if mail is not None:
        background.add_task(
            runtime.mailer.send, mail
        )  # after the commit, and after the answer: timing tells nothing
    return LoginSent(
        detail=(
            "If the address belongs to a registered subject, a code is on its way; it is valid for 10 "
            "minutes."
        )
    )


@router.post(
    "/auth/subject-login/verify",
    response_model=TokenResponse,
    responses=problems(*BODY, 401, 429),
    summary="Exchange the code for a subject token",
    description="Five tries per code. The token is short-lived (15 minutes by default).",
)
async def verify_login_code(body: LoginVerify, request: Request, session: SessionDep) -> TokenResponse:
    try:
        return await service.verify_login_code(
            session, body.email, body.code, ip=client_address(request), visitor_id=body.visitor_id
        )
    except service.LoginRefused:
        await session.commit()  # a refused attempt still counts against the rate limit and the code's tries
        raise


@router.post(
    "/clients",
    status_code=201,
    response_model=ClientCreated,
    responses=problems(*AUTH, *BODY),
    summary="Register an API client (admin)",
    description="The secret is in this response only; it is stored hashed and cannot be shown again. "
    "Not idempotent by design: a replay would have to show the secret again.",
)
@created("/v1/clients/{client_id}")
async def create_client(
    body: Annotated[ClientCreate, Body()], session: SessionDep, caller: Admin
) -> ClientCreated:
    client, secret = await service.create_client(session, body, actor=caller)
    return ClientCreated(**ClientRead.model_validate(client).model_dump(), client_secret=secret)


@router.get(
    "/clients", response_model=Page[ClientRead], responses=problems(*AUTH, 422), summary="List API clients"
)
async def list_clients(
    session: SessionDep, _caller: Admin, limit: Limit = 50, cursor: Cursor = None
) -> Page[ClientRead]:
    clients, next_cursor = await service.list_clients(session, limit=limit, cursor=cursor)
    return Page(items=[ClientRead.model_validate(c) for c in clients], next_cursor=next_cursor)


@router.get(
    "/clients/{client_id}",
    response_model=ClientRead,
    responses=problems(*AUTH, 404, 422),
    summary="One API client (admin)",
    description="Never its secret, which was shown once, at registration.",
)
async def get_client(client_id: uuid.UUID, session: SessionDep, _caller: Admin) -> ClientRead:
    return ClientRead.model_validate(await service.get_client(session, client_id))


@router.delete(
    "/clients/{client_id}",
    status_code=204,
    response_class=Response,
    responses=problems(*AUTH, 404, 422),
    summary="Revoke an API client",
)
async def revoke_client(client_id: uuid.UUID, session: SessionDep, caller: Admin) -> Response:
    await service.revoke_client(session, client_id, actor=caller)
    return Response(status_code=204)
