from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Body, Form, Header, Request, Response

from app.auth import service
from app.auth.deps import Admin
from app.auth.schemas import ClientCreate, ClientCreated, ClientRead, TokenRequest, TokenResponse
from app.core.db import SessionDep
from app.core.errors import AUTH, BODY, problems
from app.core.pagination import Cursor, Limit, Page

router = APIRouter(tags=["auth"])


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


@router.post("/auth/token", response_model=TokenResponse, responses=problems(400, 401, 413, 422),
             summary="Exchange client credentials for an access token",
             description="OAuth 2.0 client credentials grant (RFC 6749 §4.4). Credentials in the form "
                         "(`client_id`, `client_secret`) or as HTTP Basic. Failures carry the OAuth `error` code "
                         "(`invalid_client`, `unsupported_grant_type`, `invalid_scope`) in the problem body.")
async def issue_token(
    form: Annotated[TokenRequest, Form()], session: SessionDep, request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TokenResponse:
    basic_id, basic_secret = _basic_credentials(authorization)
    return await service.issue_token(session, request.app.state.settings, grant_type=form.grant_type,
                                     client_id=basic_id or form.client_id,
                                     client_secret=basic_secret or form.client_secret, scope=form.scope)


@router.post("/clients", status_code=201, response_model=ClientCreated, responses=problems(*AUTH, *BODY),
             summary="Register an API client (admin)",
             description="The secret is in this response only; it is stored hashed and cannot be shown again. "
                         "Not idempotent by design: a replay would have to show the secret again.")
async def create_client(body: Annotated[ClientCreate, Body()], session: SessionDep, caller: Admin) -> ClientCreated:
    client, secret = await service.create_client(session, body, actor=caller)
    return ClientCreated(**ClientRead.model_validate(client).model_dump(), client_secret=secret)


@router.get("/clients", response_model=Page[ClientRead], responses=problems(*AUTH, 422), summary="List API clients")
async def list_clients(session: SessionDep, _caller: Admin, limit: Limit = 50, cursor: Cursor = None) -> Page[ClientRead]:
    clients, next_cursor = await service.list_clients(session, limit=limit, cursor=cursor)
    return Page(items=[ClientRead.model_validate(c) for c in clients], next_cursor=next_cursor)


@router.delete("/clients/{client_id}", status_code=204, response_class=Response, responses=problems(*AUTH, 404, 422),
               summary="Revoke an API client")
async def revoke_client(client_id: uuid.UUID, session: SessionDep, caller: Admin) -> Response:
    await service.revoke_client(session, client_id, actor=caller)
    return Response(status_code=204)
