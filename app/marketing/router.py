from __future__ import annotations

import html
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.consent.deps import ConsentReader, ConsentWriter, SelfOrConsentReader, SelfOrConsentWriter
from app.core.db import SessionDep
from app.core.openapi import AUTH, BODY, problems
from app.core.ratelimit import client_address
from app.core.responses import shared_answers_response
from app.idempotency.deps import idempotent
from app.marketing import service
from app.marketing.schemas import (
    Channels,
    ChannelState,
    CheckRequest,
    CheckResponse,
    ContactCodeSent,
    ContactVerify,
    MarketingContactRead,
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
    description="A channel is `opted_out` when the subject opted out of it, or when one of the contacts the "
    "subject verified is opted out of it (or of `all`). Opt-outs on e-mail addresses or phone numbers the "
    "subject recorded but did not verify are somebody else's, and never show here.",
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
    description="Channels not named stay as they are. An opt-out is absolute and is kept against every "
    "e-mail address and phone number the subject has (as keyed hashes), so that it outlives erasure. Only "
    "the subject itself can lift an opt-out (409 for staff), and only on the contacts it verified "
    "(`.../marketing/contacts/{item_id}`).",
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


@router.get(
    "/subjects/{subject_id}/marketing/contacts/{item_id}",
    response_model=MarketingContactRead,
    responses=problems(*AUTH, 404, 422),
    summary="Whether one of a subject's e-mail or phone items is verified as its own",
    description="Only verified contacts are the subject's own for marketing: their opt-outs show in its "
    "channels, only they are lifted when it allows a channel again, and only they make it the owner of the "
    "contact in the check. The registered address is verified by the registration and by every login. "
    "404 for an item that is not an e-mail address or phone number that can be a contact.",
)
async def get_contact(
    subject_id: uuid.UUID, item_id: uuid.UUID, session: SessionDep, caller: SelfOrConsentReader
) -> MarketingContactRead:
    return await service.contact(session, subject_id, item_id, caller=caller)


@router.post(
    "/subjects/{subject_id}/marketing/contacts/{item_id}/code",
    status_code=202,
    response_model=ContactCodeSent,
    responses=problems(*AUTH, 404, 409, 422, 429),
    summary="Mail a verification code to one of a subject's e-mail items",
    description="A six-digit code, valid 10 minutes, five tries, to the address the item holds; whoever "
    "reads it there proves the address is theirs by sending it to `.../verification`. It is the login "
    "code's machinery: a new code retires the address's earlier ones, and requests are rate limited per "
    "address and per client address (429). 409: a phone number (no code is sent to it; staff verify it with "
    "a reason), or a contact already verified.",
)
async def send_contact_code(
    subject_id: uuid.UUID,
    item_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    caller: SelfOrConsentWriter,
) -> ContactCodeSent:
    mail = await service.send_contact_code(
        session, subject_id, item_id, caller=caller, ip=client_address(request)
    )
    background.add_task(runtime.mailer.send, mail)  # after the commit
    return ContactCodeSent(detail="A code is on its way to the address; it is valid for 10 minutes.")


@router.post(
    "/subjects/{subject_id}/marketing/contacts/{item_id}/verification",
    response_model=MarketingContactRead,
    responses=problems(*AUTH, *BODY, 404, 409, 429),
    summary="Verify a contact as the subject's own: the mailed code, or a staff reason",
    description='`{"code"}`: the code mailed to the address (the subject, or staff it was read out to); a '
    'wrong, expired or used-up code is 422 and counts as a try. `{"reason"}`: staff only (403 for the '
    "subject), how they know the contact is the subject's; the reason is kept with the contact and the "
    "verification is audited. 409: a code for a phone number, or for a contact already verified.",
)
async def verify_contact(
    subject_id: uuid.UUID,
    item_id: uuid.UUID,
    body: ContactVerify,
    request: Request,
    session: SessionDep,
    caller: SelfOrConsentWriter,
) -> MarketingContactRead:
    try:
        return await service.verify_contact(
            session, subject_id, item_id, body, caller=caller, ip=client_address(request)
        )
    except service.CodeRefused:
        await session.commit()  # a refused try still counts against the code and the rate limit
        raise


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
    "consent granted, not restricted or erased, with no opt-out for the channel or `all`. A contact "
    "belongs to every subject that verified it: an opt-out (the contact's, or an owner's for the channel) "
    "wins, then all owners must answer alike, or the answer is `conflict`. A contact that subjects recorded "
    "but none verified is `unverified_contact`.",
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
    responses=problems(*BODY, 404, 429),
    summary="One-click unsubscribe (RFC 8058), no login",
    description="POST with the form body `List-Unsubscribe=One-Click`, as mail clients do. Opts the "
    "address out of e-mail marketing for good. Posting it again answers the same and changes (and "
    "announces) nothing. Rate limited per client address (429 with `Retry-After`; "
    "`PRIVACY_UNSUBSCRIBE_RATE_LIMIT`).",
)
async def unsubscribe(
    token: Token,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    one_click: Annotated[Literal["One-Click"], Form(alias="List-Unsubscribe")],
) -> HTMLResponse:
    del one_click  # its presence is the RFC 8058 signal; validation has checked it
    runtime.unsubscribe_limit.check(request)
    await service.unsubscribe(session, token)
    return HTMLResponse(
        PAGE.format(
            title="Unsubscribed",
            body="<h1>Klart / Done</h1><p>Du får inga fler "
            "erbjudanden via e-post. / You will get no more offers by e-mail.</p>",
        )
    )
