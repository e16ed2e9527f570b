"""What every privacy-center page needs: who is there (the session cookie), the language, the form token, and
rendering with the headers a page with personal data must carry."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principals import Principal, Role
from app.catalog import service as catalog
from app.core.db import SessionDep, transaction
from app.core.errors import AppError
from app.core.headers import content_security_policy
from app.core.time import SWEDEN
from app.privacy_center import service
from app.privacy_center.schemas import CenterForm
from app.privacy_center.texts import TEXTS
from app.runtime import Runtime, RuntimeDep
from app.web.router import asset_url

PREFIX = "/privacy-center"
COOKIE = "wesafe_center"
HERE = Path(__file__).parent
# No script at all, no inline style, no frames, forms only to this service (core.headers' base). nosniff, the
# referrer policy and X-Frame-Options are on every page of the service (core.middleware).
POLICY = content_security_policy(style_src="'self'", img_src="'self'")
HEADERS = {
    "Content-Security-Policy": POLICY,
    # Personal data must not stay in a cache, nor come back with the back button after signing out.
    "Cache-Control": "no-store",
}


def _date(moment: datetime | None, with_time: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(SWEDEN).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is text: a name like <script> stays text
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
TEMPLATES.filters["date"] = _date


def language(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "sv"


def url(path: str, lang: str, **query: Any) -> str:
    """A center URL that keeps the language."""
    params = {k: v for k, v in query.items() if v is not None}
    if lang == "en":
        params["lang"] = "en"
    return PREFIX + path + (f"?{urlencode(params)}" if params else "")


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    other = "sv" if lang == "en" else "en"
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    switch = request.url.path + "?" + urlencode(query | ({"lang": "en"} if other == "en" else {}))
    values = {
        "t": TEXTS[lang],
        "lang": lang,
        "url": lambda path, **q: url(path, lang, **q),
        "switch_url": switch.rstrip("?") if request.method == "GET" else url("", other),
        "signed_in": False,
        "csrf": "",
        "css": asset_url("/privacy-center/static/center.css"),
        # The footer's contact on every page: the configured controller, as the start page shows it.
        "controller": catalog.controller(request.app.state.settings),
        "active": "",
        **context,
    }
    return HTMLResponse(TEMPLATES.get_template(name).render(values), status_code=status)


class SignInNeeded(Exception):
    """The page needs a signed-in subject: off to the sign-in page."""


class FormError(Exception):
    """A form the center refuses before any service sees it, with the message's key in TEXTS (so that it is
    in the page's language, which a service's own detail is not)."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


@dataclass
class Center:
    """One request to the privacy center."""

    request: Request
    session: AsyncSession
    runtime: Runtime
    person: service.Person
    cookie: str | None
    token: str = field(init=False)

    def __post_init__(self) -> None:
        self.token = self.person.token

    @property
    def lang(self) -> str:
        return language(self.request)

    @property
    def t(self) -> dict[str, Any]:
        return TEXTS[self.lang]

    def url(self, path: str, **query: Any) -> str:
        return url(path, self.lang, **query)

    @property
    def subject_id(self) -> uuid.UUID:
        if self.person.subject_id is None:
            raise SignInNeeded
        return self.person.subject_id

    @property
    def principal(self) -> Principal:
        """The signed-in subject, as the services' caller (else off to the sign-in page)."""
        return Principal(role=Role.subject, sub=str(self.subject_id))

    def check(self, form: CenterForm) -> None:
        service.check_form(self.session, self.person.token, form.csrf_token)

    def _finish(self, response: Response) -> Response:
        if self.token != self.cookie:
            response.set_cookie(
                COOKIE,
                self.token,
                path=PREFIX,
                httponly=True,
                secure=self.runtime.settings.env == "production",
                samesite="strict",
            )
        return response

    def page(self, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("signed_in", self.person.subject_id is not None)
        context.setdefault("csrf", service.form_token(self.session, self.token))
        return self._finish(render(self.request, name, status, **context))

    def redirect(self, path: str, **query: Any) -> Response:
        return self._finish(RedirectResponse(self.url(path, **query), status_code=303))


async def center(request: Request, session: SessionDep, runtime: RuntimeDep) -> Center:
    # Every page may write (the session's renewal, the audit trail of what it shows): one transaction.
    await transaction(session)
    cookie = request.cookies.get(COOKIE)
    return Center(request, session, runtime, await service.person(session, cookie), cookie)


CenterDep = Annotated[Center, Depends(center)]


class CenterRoute(APIRoute):
    """The center's routes answer in HTML, errors included, and every answer carries the page headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInNeeded:
                response = RedirectResponse(url("/sign-in", language(request), expired=1), status_code=303)
            except service.FormRefused:
                response = _error(request, 403, "csrf_refused")
            except FormError as refused:
                response = _error(request, refused.status, refused.key)
            except RequestValidationError:
                response = _error(request, 422, "invalid_form")
            except AppError as error:
                retry = {k: v for k, v in (error.headers or {}).items() if k.lower() == "retry-after"}
                key = "too_many" if error.status == 429 else None
                response = _error(request, error.status, key, error.detail, retry)
            response.headers.update(HEADERS)
            return response

        return route


def _error(
    request: Request, status: int, key: str | None, detail: str | None = None, headers: Any = None
) -> Response:
    texts = TEXTS[language(request)]
    message = texts[key] if key else texts["not_found"] if status == 404 else detail
    response = render(request, "error.html", status, message=message)
    if headers:
        response.headers.update(headers)
    return response
