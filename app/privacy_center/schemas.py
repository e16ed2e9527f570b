"""The privacy center's forms (posted as application/x-www-form-urlencoded by a plain HTML form)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.catalog.schemas import PurposeCode
from app.consent.schemas import ConsentStatus
from app.core.types import Email, Text5000
from app.marketing.schemas import ChannelState, MarketingChannel
from app.rights_requests.schemas import RequestType


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class CenterForm(BaseModel):
    """Every form carries the token of the page it came from (service.check_form)."""

    model_config = ConfigDict(extra="ignore")

    csrf_token: str | None = Field(default=None, max_length=200)


class EmailForm(CenterForm):
    email: Email


class CodeForm(EmailForm):
    # Checked by the code login itself, which counts every try: a malformed code is a wrong code.
    code: str = Field(max_length=20)


class ConsentForm(CenterForm):
    purpose: PurposeCode
    status: ConsentStatus


class CookieForm(CenterForm):
    preferences: bool = False
    analytics: bool = False
    marketing: bool = False


class MarketingForm(CenterForm):
    channel: MarketingChannel
    state: ChannelState


class RequestForm(CenterForm):
    type: RequestType
    details: Annotated[Text5000 | None, BeforeValidator(_blank_is_none)] = None
    purpose: Annotated[PurposeCode | None, BeforeValidator(_blank_is_none)] = None
