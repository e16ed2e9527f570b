from __future__ import annotations

import html
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.consent.deps import ConsentReader, ConsentWriter, SelfOrConsentReader, SelfOrConsentWriter
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.responses import shared_answers_response
from app.idempotency.deps import idempotent
from app.marketing import service
from app.marketing.schemas import (
    Channels,
    ChannelState,
    CheckRequest,
    CheckResponse,
    MarketingRead,
    MarketingUpdate,
    OptOutCreate,
    OptOutList,
    OptOutRead,
    UnsubscribeLink,
    UnsubscribeLinkCreate,
)
from app.runtime import RuntimeDep

router = APIRouter(tags=["marketing"])
Token = Annotated[
    str,
    Query(
        min_length=10,
        max_length=1000,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="The signed token from the unsubscribe link.",
    ),
]


@router.get(
    "/subjects/{subject_id}/marketing",
    response_model=MarketingRead,
    responses=problems(*AUTH, 404, 422),
    summary="A subject's marketing channels",
)
async def get_channels(
    subject_id: uuid.UUID, session: SessionDep, caller: SelfOrConsentReader
) -> MarketingRead:
    return MarketingRead(channels=Channels(**await service.channels(session, subject_id, caller=caller)))


@router.put(
    "/subjects/{subject_id}/marketing",
    response_model=MarketingRead,
    responses=problems(*AUTH, *BODY, 404, 409),
    summary="Opt a subject out of (or back into) marketing channels",
    description="Channels not named stay as they are. An opt-out is absolute and is kept against the "
    "subject's e-mail addresses and phone numbers (as keyed hashes), so that it outlives "
    "erasure. Only the subject itself can lift an opt-out (409 for staff).",
)
async def update_channels(
    subject_id: uuid.UUID, body: MarketingUpdate, session: SessionDep, caller: SelfOrConsentWriter
) -> MarketingRead:
    changes = {
        channel: ChannelState(state)
        for channel, state in body.channels.model_dump(exclude_unset=True).items()
    }
    states = await service.update_channels(session, subject_id, changes, caller=caller)
    return MarketingRead(channels=Channels(**states))


async def _opt_outs_again(key: str, session: AsyncSession) -> OptOutList:
    """A retried opt-out (same Idempotency-Key): the opt-outs the first one recorded."""
    rows = await service.get_opt_outs(session, [uuid.UUID(i) for i in key.split(",")])
    return OptOutList(items=[OptOutRead.model_validate(r) for r in rows])


@router.post(
    "/marketing/opt-outs",
    status_code=201,
    response_model=OptOutList,
    responses=problems(*AUTH, *BODY),
    summary="Opt a contact out of marketing, subject or not",
    description="By e-mail address and/or phone number, for one channel or `all`. Only keyed hashes of "
    "the contacts are kept. Repeating it changes nothing.",
)
@idempotent(replay=_opt_outs_again, key_of=lambda opt_outs: ",".join(str(o.id) for o in opt_outs.items))
async def opt_out_contact(body: OptOutCreate, session: SessionDep, caller: ConsentWriter) -> OptOutList:
    rows = await service.opt_out_contact(session, body, actor=caller)
    return OptOutList(items=[OptOutRead.model_validate(r) for r in rows])


@router.post(
    "/marketing/check",
    response_model=CheckResponse,
    responses=problems(*AUTH, *BODY),
    summary="May these contacts receive marketing on these channels?",
    description="Up to 1000 contacts; results in input order. Allowed only for a subject with `marketing` "
    "consent granted, not restricted or erased, with no opt-out for the channel or `all`.",
)
async def check(body: CheckRequest, session: SessionDep, _caller: ConsentReader) -> Response:
    return shared_answers_response("results", await service.check(session, body.contacts))


@router.post(
    "/marketing/unsubscribe-links",
    response_model=UnsubscribeLink,
    responses=problems(*AUTH, *BODY),
    summary="A one-click unsubscribe link for an e-mail address (RFC 8058)",
)
async def unsubscribe_link(
    body: UnsubscribeLinkCreate, runtime: RuntimeDep, _caller: ConsentReader
) -> UnsubscribeLink:
    token = service.unsubscribe_token(runtime.keys, body.email)
    return UnsubscribeLink(
        url=f"{runtime.settings.public_base_url}/v1/marketing/unsubscribe?token={token}", token=token
    )


PAGE = """<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">{body}</body></html>"""


@router.get(
    "/marketing/unsubscribe",
    response_class=HTMLResponse,
    responses=problems(404, 422),
    summary="The unsubscribe page behind the link",
    description="Shows a button; opening the link changes nothing (mail scanners open links).",
)
async def unsubscribe_page(token: Token, runtime: RuntimeDep) -> HTMLResponse:
    service.verify_unsubscribe_token(runtime.keys, token)
    body = (
        f'<h1>Avregistrering / Unsubscribe</h1><form method="post" action="?token={html.escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<p>Vill du inte längre få e-post med erbjudanden från oss? / No more offers by e-mail from us?</p>"
        '<button type="submit">Avregistrera mig / Unsubscribe me</button></form>'
    )
    return HTMLResponse(PAGE.format(title="Unsubscribe", body=body))


@router.post(
    "/marketing/unsubscribe",
    response_class=HTMLResponse,
    responses=problems(*BODY, 404),
    summary="One-click unsubscribe (RFC 8058), no login",
    description="POST with the form body `List-Unsubscribe=One-Click`, as mail clients do. Opts the "
    "address out of e-mail marketing for good.",
)
async def unsubscribe(
    token: Token,
    session: SessionDep,
    one_click: Annotated[Literal["One-Click"], Form(alias="List-Unsubscribe")],
) -> HTMLResponse:
    del one_click  # its presence is the RFC 8058 signal; validation has checked it
    await service.unsubscribe(session, token)
    return HTMLResponse(
        PAGE.format(
            title="Unsubscribed",
            body="<h1>Klart / Done</h1><p>Du får inga fler "
            "erbjudanden via e-post. / You will get no more offers by e-mail.</p>",
        )
    )
