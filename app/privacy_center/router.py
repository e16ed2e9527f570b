"""The privacy center (`/privacy-center`): server-rendered pages over the same services as the API, in Swedish
(default) and English (`?lang=en`). Forms post back here and redirect (post/redirect/get); no page runs a
script. Not in the OpenAPI document."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, BackgroundTasks, Form, Request, Response

from app.auth import service as auth
from app.catalog import service as catalog
from app.catalog.schemas import LegalBasis
from app.consent import service as consent
from app.consent.schemas import Channel, ConsentCreate, Evidence
from app.core.errors import NotFound
from app.core.mail import Mail
from app.core.ratelimit import client_address
from app.disclosures import service as disclosures
from app.marketing import service as marketing
from app.privacy_center import service
from app.privacy_center.deps import PREFIX, CenterDep, CenterRoute, FormError, SignInNeeded
from app.privacy_center.schemas import (
    CenterForm,
    CodeForm,
    ConsentForm,
    CookieForm,
    EmailForm,
    MarketingForm,
    RequestForm,
)
from app.rights_requests import package as packages
from app.rights_requests import service as rights_requests
from app.rights_requests.schemas import RequestCreate, RequestStatus, RequestType
from app.subjects import service as subjects
from app.subjects.schemas import SubjectStatus
from app.visitors import service as visitors
from app.visitors.schemas import Choices, VisitorConsentCreate

router = APIRouter(prefix=PREFIX, tags=["pages"], include_in_schema=False, route_class=CenterRoute)

# The banner's own cookie (vanilla-cookieconsent's, on the website's origin): its `data.v` is the visitor id,
# readable here when the center is served on the same site as the banner.
BANNER_COOKIE = "wesafe_consent"
EVERYTHING = 500  # a person's own lists are short; one page holds them


def _banner_visitor(request: Request) -> str | None:
    raw = request.cookies.get(BANNER_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(unquote(raw)).get("data") or {}
    except (ValueError, AttributeError):
        return None
    visitor_id = data.get("v") if isinstance(data, dict) else None
    return visitor_id if isinstance(visitor_id, str) and 8 <= len(visitor_id) <= 64 else None


def _request(form: RequestForm) -> RequestCreate:
    """The request a form files. An objection without its purpose is refused here, in the page's language
    (the service would refuse it too, in English); nothing is filed, and a proof is not spent."""
    if form.type == RequestType.objection and form.purpose is None:
        raise FormError(422, "objection_purpose")
    return RequestCreate(type=form.type, details=form.details, purpose=form.purpose)


def _mail(background: BackgroundTasks, c: CenterDep, mails: list[Mail]) -> None:
    for mail in mails:
        background.add_task(c.runtime.mailer.send, mail)  # after the commit


async def _subject(c: CenterDep) -> subjects.Subject:
    """The signed-in subject (every page that shows it reads it, and the read is audited)."""
    return await subjects.read_subject(c.session, c.subject_id, c.principal)


def _page_of(subject: subjects.Subject) -> dict[str, Any]:
    return {
        "subject": subject,
        "erased": subject.status == SubjectStatus.erased,
        "restricted": subject.status == SubjectStatus.restricted,
    }


# --- public pages ---


@router.get("")
async def start(c: CenterDep, signed_out: bool = False) -> Response:
    notice = await catalog.current_policy(c.session, c.lang)
    purposes = await catalog.list_purposes(c.session)
    return c.page(
        "start.html",
        active="start",
        notice=notice,
        versions=await catalog.list_policies(c.session),
        purposes=purposes,
        signed_out=signed_out,
    )


@router.get("/notice/{version}")
async def notice(c: CenterDep, version: str) -> Response:
    shown = await catalog.get_policy(c.session, version, c.lang)
    return c.page("notice.html", active="start", notice=shown)


# --- signing in and out ---


@router.get("/sign-in")
async def sign_in_page(c: CenterDep, expired: bool = False) -> Response:
    if c.person.subject_id is not None:
        return c.redirect("/data")
    return c.page("sign_in.html", active="sign-in", step="email", expired=expired)


@router.post("/sign-in")
async def ask_for_code(
    c: CenterDep, form: Annotated[EmailForm, Form()], request: Request, background: BackgroundTasks
) -> Response:
    c.check(form)
    mail = await auth.request_login_code(c.session, form.email, ip=client_address(request))
    _mail(background, c, [mail] if mail else [])
    return c.page("sign_in.html", active="sign-in", step="code", email=form.email)


@router.post("/sign-in/code")
async def enter_code(c: CenterDep, form: Annotated[CodeForm, Form()], request: Request) -> Response:
    c.check(form)
    try:
        subject_id = await auth.sign_in(
            c.session,
            form.email,
            form.code.strip(),
            ip=client_address(request),
            visitor_id=_banner_visitor(request),
        )
    except auth.LoginRefused:
        await c.session.commit()  # a refused code still counts against its tries and the rate limits
        return c.page("sign_in.html", 401, active="sign-in", step="code", email=form.email, refused=True)
    c.token = await service.start_session(c.session, c.person.token, subject_id)
    return c.redirect("/data")


@router.post("/sign-out")
async def sign_out(c: CenterDep, form: Annotated[CenterForm, Form()]) -> Response:
    c.check(form)
    c.token = await service.end_session(c.session, c.person.token)
    return c.redirect("", signed_out=1)


# --- the signed-in pages ---


@router.get("/data")
async def my_data(c: CenterDep) -> Response:
    subject = await _subject(c)
    items, _ = await subjects.list_items(
        c.session, subject.id, caller=c.principal, category=None, purpose=None, limit=EVERYTHING, cursor=None
    )
    purposes = {p.code: p for p in await catalog.list_purposes(c.session)}
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        grouped[item.category].append(subjects.render_item(c.session, item, c.principal))
    return c.page("data.html", active="data", groups=dict(grouped), purposes=purposes, **_page_of(subject))


@router.get("/consents")
async def my_consents(
    c: CenterDep, request: Request, receipt: uuid.UUID | None = None, device: bool = False
) -> Response:
    subject = await _subject(c)
    purposes = [p for p in await catalog.list_purposes(c.session) if p.legal_basis == LegalBasis.consent]
    states = {s.purpose: s for s in await consent.current(c.session, subject.id, caller=c.principal)}
    history, _ = await consent.history(c.session, subject.id, caller=c.principal, limit=20, cursor=None)
    recorded = None
    if receipt is not None:
        try:
            recorded = await consent.get_event(c.session, subject.id, receipt, caller=c.principal)
        except NotFound:
            recorded = None
    device_choices = None
    visitor_id = _banner_visitor(request)
    if visitor_id is not None:
        try:
            device_choices = (await visitors.current(c.session, visitor_id))["choices"]
        except NotFound:
            device_choices = None
    declaration = await catalog.cookie_declaration(c.session, c.lang)
    return c.page(
        "consents.html",
        active="consents",
        purposes=purposes,
        states=states,
        history=history,
        recorded=recorded,
        device_choices=device_choices,
        device_saved=device,
        cookie_categories=declaration.categories,
        purpose_names={p.code: p.name for p in await catalog.list_purposes(c.session)},
        **_page_of(subject),
    )


@router.post("/consents")
async def change_consent(c: CenterDep, form: Annotated[ConsentForm, Form()], request: Request) -> Response:
    c.check(form)
    purpose = await catalog.get_purpose(c.session, form.purpose)
    shown = f"{purpose.name[c.lang]}: {purpose.description[c.lang]}"
    event = await consent.record(
        c.session,
        c.subject_id,
        ConsentCreate(
            purpose=form.purpose,
            status=form.status,
            channel=Channel.web,
            evidence=Evidence(
                ip=client_address(request) or None,
                user_agent=(request.headers.get("user-agent") or "")[:1000] or None,
                text_shown=f"{c.t['site_title']} ({PREFIX}) - {shown}"[:10000],
            ),
        ),
        caller=c.principal,
        gpc=request.headers.get("sec-gpc") == "1",
    )
    return c.redirect("/consents", receipt=event["id"])


@router.post("/cookies")
async def change_cookies(c: CenterDep, form: Annotated[CookieForm, Form()], request: Request) -> Response:
    c.check(form)
    if c.person.subject_id is None:
        raise SignInNeeded
    visitor_id = _banner_visitor(request)
    if visitor_id is None:
        return c.redirect("/consents")
    await visitors.record(
        c.session,
        VisitorConsentCreate(
            visitor_id=visitor_id,
            choices=Choices(preferences=form.preferences, analytics=form.analytics, marketing=form.marketing),
            language=c.lang,
            text_shown=c.t["device_lead"],
            page_url=str(request.url)[:2000],
        ),
        gpc=request.headers.get("sec-gpc") == "1",
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    return c.redirect("/consents", device=1)


@router.get("/marketing")
async def my_marketing(c: CenterDep, saved: bool = False) -> Response:
    subject = await _subject(c)
    channels = await marketing.channels(c.session, subject.id, caller=c.principal)
    return c.page("marketing.html", active="marketing", channels=channels, saved=saved, **_page_of(subject))


@router.post("/marketing")
async def change_marketing(c: CenterDep, form: Annotated[MarketingForm, Form()]) -> Response:
    c.check(form)
    await marketing.update_channels(c.session, c.subject_id, {form.channel: form.state}, caller=c.principal)
    return c.redirect("/marketing", saved=1)


@router.get("/requests")
async def my_requests(c: CenterDep, sent: bool = False) -> Response:
    subject = await _subject(c)
    requests, _ = await rights_requests.list_requests(
        c.session,
        caller=c.principal,
        status=None,
        type_=None,
        overdue=None,
        due_within_days=None,
        limit=EVERYTHING,
        cursor=None,
    )
    return c.page(
        "requests.html",
        active="requests",
        requests=requests,
        sent=sent,
        types=list(RequestType),
        purposes=await catalog.list_purposes(c.session),
        **_page_of(subject),
    )


@router.post("/requests")
async def file_request(
    c: CenterDep, form: Annotated[RequestForm, Form()], background: BackgroundTasks
) -> Response:
    c.check(form)
    filed, mails = await rights_requests.file(
        c.session,
        _request(form),
        caller=c.principal,
    )
    _mail(background, c, mails)
    return c.redirect(f"/requests/{filed.id}", sent=1)


@router.get("/requests/{request_id}")
async def one_request(c: CenterDep, request_id: uuid.UUID, sent: bool = False) -> Response:
    subject = await _subject(c)
    shown = await rights_requests.read(c.session, request_id, caller=c.principal)
    downloadable = shown.status == RequestStatus.completed and shown.type in (
        RequestType.access,
        RequestType.portability,
    )
    return c.page(
        "request.html",
        active="requests",
        rights_request=shown,
        sent=sent,
        downloadable=downloadable,
        purposes={p.code: p for p in await catalog.list_purposes(c.session)},
        **_page_of(subject),
    )


@router.get("/requests/{request_id}/package")
async def download_package(
    c: CenterDep,
    request_id: uuid.UUID,
    format: Literal["json", "csv", "html"] = "json",  # noqa: A002
) -> Response:
    built = await rights_requests.package(c.session, request_id, caller=c.principal)
    body, media_type, headers = packages.download(built, format)
    return Response(body, media_type=media_type, headers=headers)


@router.get("/recipients")
async def my_recipients(c: CenterDep) -> Response:
    subject = await _subject(c)
    found, _ = await disclosures.list_for_subject(
        c.session, subject.id, caller=c.principal, limit=EVERYTHING, cursor=None
    )
    purposes = {p.code: p for p in await catalog.list_purposes(c.session)}
    return c.page(
        "recipients.html", active="recipients", disclosures=found, purposes=purposes, **_page_of(subject)
    )


# --- people who are not registered ---


@router.get("/no-account")
async def no_account(c: CenterDep) -> Response:
    if c.person.email is not None:
        return c.page(
            "no_account.html",
            active="",
            step="request",
            email=c.person.email,
            types=list(RequestType),
            purposes=await catalog.list_purposes(c.session),
        )
    return c.page("no_account.html", active="", step="email")


@router.post("/no-account")
async def no_account_code(
    c: CenterDep, form: Annotated[EmailForm, Form()], request: Request, background: BackgroundTasks
) -> Response:
    c.check(form)
    _mail(background, c, [await auth.request_proof_code(c.session, form.email, ip=client_address(request))])
    return c.page("no_account.html", active="", step="code", email=form.email)


@router.post("/no-account/code")
async def no_account_proof(c: CenterDep, form: Annotated[CodeForm, Form()], request: Request) -> Response:
    c.check(form)
    try:
        await auth.verify_proof_code(c.session, form.email, form.code.strip(), ip=client_address(request))
    except auth.LoginRefused:
        await c.session.commit()  # the try counts
        return c.page("no_account.html", 401, active="", step="code", email=form.email, refused=True)
    c.token = await service.start_proof(c.session, c.person.token, form.email)
    return c.redirect("/no-account")


@router.post("/no-account/request")
async def no_account_request(
    c: CenterDep, form: Annotated[RequestForm, Form()], background: BackgroundTasks
) -> Response:
    c.check(form)
    if c.person.email is None:
        return c.redirect("/no-account")
    filed, mails = await rights_requests.file_unregistered(
        c.session,
        c.person.email,
        _request(form),
        caller=service.CENTER,
    )
    _mail(background, c, mails)
    email = c.person.email
    c.token = await service.end_session(c.session, c.person.token)
    return c.page("no_account.html", active="", step="sent", email=email, due_at=filed.due_at)
