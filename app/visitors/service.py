"""Visitor consents: a website visitor's cookie choices, recorded with their evidence and a signed receipt,
before (or without) the visitor being anyone we know.

A choice is one event and the visitor's new state, written together in one statement (the service's
highest-volume write: one for every first visit). A device is linked to a subject when its owner logs in
with it; from then on a choice on the device is also the subject's consent (consent.record_visitor_choices),
and the subject's newer consents (say, withdrawn in the CRM) become the device's state the next time the
banner asks. The newer choice wins, either way."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.catalog import service as catalog
from app.consent import service as consent
from app.consent.schemas import ConsentMethod, ConsentStatus
from app.core.db import transaction
from app.core.errors import NotFound
from app.core.time import add_months, add_period, utc_now
from app.visitors import repository
from app.visitors.schemas import VisitorConsentCreate, VisitorMethod

log = logging.getLogger(__name__)

# A choice stands this long; then the banner asks again.
VALIDITY_MONTHS = 12
# The purpose whose retention rule says how long the evidence of choices is kept (the record of processing
# lists it with the rest).
EVIDENCE_PURPOSE = "consent_records"


class VisitorNotFound(NotFound):
    title = "Visitor not found"


def new_visitor_id() -> str:
    """128 random bits, base64url: opaque, and not guessable."""
    return secrets.token_urlsafe(16)


def network_of(address: str | None) -> str | None:
    """The address's network, /24 (IPv4) or /48 (IPv6): evidence that a browser chose, not who it was."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))


def _gpc_covers(snapshot: catalog.Catalog, category: catalog.CookieCategory) -> bool:
    """Whether Global Privacy Control, when sent, refuses the category (its purpose honours GPC)."""
    purpose = snapshot.purpose(category.purpose) if category.purpose else None
    return purpose is not None and purpose.gpc


def _choices(snapshot: catalog.Catalog, wanted: Mapping[str, bool], gpc: bool) -> dict[str, bool]:
    """Every category: the required ones on, the rest as wanted, and those Global Privacy Control covers off
    when the browser sent it."""
    return {
        c.code: c.required or (bool(wanted.get(c.code)) and not (gpc and _gpc_covers(snapshot, c)))
        for c in snapshot.cookie_categories
    }


def _receipt(session: AsyncSession, snapshot: catalog.Catalog, event: Mapping[str, Any]) -> str:
    """The choice as a consent receipt, in the format of subjects' receipts, with one purpose per category
    that needs consent and the choices themselves."""
    settings = runtime.of(session).settings
    language = event["language"]
    purposes = [
        snapshot.purpose(category.purpose)
        for category in snapshot.cookie_categories
        if category.purpose is not None
    ]
    allowed = any(event["choices"][c.code] for c in snapshot.cookie_categories if not c.required)
    claims = {
        **consent.receipt_envelope(
            settings,
            receipt_id=str(event["id"]),
            principal_id=event["visitor_id"],
            recorded_at=event["recorded_at"],
            occurred_at=event["recorded_at"],
            collection_method=f"web ({event['method']})",
            policy_version=event["notice_version"],
            language=language,
        ),
        "services": [
            {
                "service": "Cookies på www.wesafe.se" if language == "sv" else "Cookies on www.wesafe.se",
                "purposes": [consent.receipt_purpose(p, language) for p in purposes if p is not None],
            }
        ],
        "consentStatus": ConsentStatus.granted if allowed else ConsentStatus.withdrawn,
        "consentMethod": event["method"],
        "cookieChoices": event["choices"],
        "gpc": event["gpc"],
    }
    return runtime.of(session).keys.receipts.sign(claims)


async def _write(
    session: AsyncSession,
    snapshot: catalog.Catalog,
    *,
    visitor_id: str,
    created_at: datetime,
    choices: dict[str, bool],
    gpc: bool,
    method: VisitorMethod,
    notice_version: str,
    language: str,
    evidence: Mapping[str, str | None],
) -> dict[str, Any]:
    """The event and the visitor's new state, in one statement; returns the state, with the receipt."""
    now = utc_now()
    event = {
        "id": uuid.uuid4(),
        "visitor_id": visitor_id,
        "choices": choices,
        "gpc": gpc,
        "method": method,
        "notice_version": notice_version,
        "language": language,
        "text_shown": evidence.get("text_shown"),
        "page_url": evidence.get("page_url"),
        "user_agent": evidence.get("user_agent"),
        "network": evidence.get("network"),
        "recorded_at": now,
        "expires_at": add_months(now, VALIDITY_MONTHS),
    }
    event["receipt"] = _receipt(session, snapshot, event)
    state = {
        "id": visitor_id,
        "subject_id": None,  # kept as it is by an update (repository._replace_state)
        "choices": choices,
        "gpc": gpc,
        "method": method,
        "notice_version": notice_version,
        "language": language,
        "event_id": event["id"],
        "recorded_at": now,
        "expires_at": event["expires_at"],
        "created_at": created_at,
    }
    await repository.write(session, repository.save_state(state), repository.append_event(event))
    return {**state, "receipt": event["receipt"]}


def _live(visitor: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    return visitor if visitor is not None and visitor["expires_at"] > now else None


async def record(
    session: AsyncSession,
    data: VisitorConsentCreate,
    *,
    gpc: bool,
    address: str | None,
    user_agent: str | None,
) -> dict[str, Any]:
    """A visitor's choice. An id the service did not issue, or whose choice expired, gets a new one."""
    snapshot = await catalog.cached(session)
    now = utc_now()
    notice = catalog.notice_version(snapshot, data.notice_version, now, loc=["body", "notice_version"])
    visitor = _live(await repository.get(session, data.visitor_id), now) if data.visitor_id else None
    subject_id = visitor["subject_id"] if visitor else None
    if subject_id is not None:
        await transaction(session)  # the device's state and the subject's consents, together
    choices = _choices(snapshot, data.choices.model_dump(), gpc)
    state = await _write(
        session,
        snapshot,
        visitor_id=visitor["id"] if visitor else new_visitor_id(),
        created_at=visitor["created_at"] if visitor else now,
        choices=choices,
        gpc=gpc,
        method=VisitorMethod.gpc if gpc else VisitorMethod.explicit,
        notice_version=notice,
        language=data.language,
        evidence={
            "text_shown": data.text_shown,
            "page_url": data.page_url,
            "user_agent": user_agent[:1000] if user_agent else None,
            "network": network_of(address),
        },
    )
    if subject_id is not None:
        await _to_subject(session, snapshot, subject_id, state, text_shown=data.text_shown)
    return {**state, "subject_id": subject_id}


async def _to_subject(
    session: AsyncSession,
    snapshot: catalog.Catalog,
    subject_id: uuid.UUID,
    state: Mapping[str, Any],
    *,
    text_shown: str | None,
) -> None:
    """The device's choice as the subject's consents, for each category's purpose (where it is newer)."""
    await consent.record_visitor_choices(
        session,
        subject_id,
        {
            c.purpose: (
                state["choices"][c.code],
                ConsentMethod.gpc if state["gpc"] and _gpc_covers(snapshot, c) else ConsentMethod.explicit,
            )
            for c in snapshot.cookie_categories
            if c.purpose is not None
        },
        visitor_id=state["id"],
        occurred_at=state["recorded_at"],
        policy_version=state["notice_version"],
        text_shown=text_shown,
    )


async def _from_subject(
    session: AsyncSession, snapshot: catalog.Catalog, visitor: dict[str, Any]
) -> dict[str, Any]:
    """The visitor's state, with the linked subject's consents that are newer than its choice applied (and
    recorded as the device's new state, method `subject`)."""
    subject_id = visitor["subject_id"]
    states = await consent.states_for(session, [subject_id])
    choices = dict(visitor["choices"])
    for category in snapshot.cookie_categories:
        known = states.get((subject_id, category.purpose)) if category.purpose else None
        if known is not None and known[1] > visitor["recorded_at"]:
            choices[category.code] = known[0] == ConsentStatus.granted
    if choices == visitor["choices"]:
        return visitor
    state = await _write(
        session,
        snapshot,
        visitor_id=visitor["id"],
        created_at=visitor["created_at"],
        choices=choices,
        gpc=visitor["gpc"],
        method=VisitorMethod.subject,
        notice_version=visitor["notice_version"],
        language=visitor["language"],
        evidence={},
    )
    return {**state, "subject_id": subject_id}


async def current(session: AsyncSession, visitor_id: str) -> dict[str, Any]:
    """The visitor's choices now; unknown or expired is not found."""
    visitor = _live(await repository.get(session, visitor_id), utc_now())
    if visitor is None:
        raise VisitorNotFound("No such visitor, or its choice has expired")
    if visitor["subject_id"] is None:
        return visitor
    return await _from_subject(session, await catalog.cached(session), visitor)


async def link_at_login(session: AsyncSession, visitor_id: str, subject_id: uuid.UUID) -> None:
    """The device a subject logged in with becomes theirs: its choices become the subject's consents, the
    subject's newer consents its choices (the newer wins), and later choices on either side apply to both.
    An unknown or expired id links nothing (the login goes on). In the caller's transaction."""
    await transaction(session)
    visitor = _live(await repository.get(session, visitor_id), utc_now())
    if visitor is None:
        log.info("login with an unknown or expired visitor id: nothing linked")
        return
    await repository.link(session, visitor_id, subject_id)
    visitor = {**visitor, "subject_id": subject_id}
    snapshot = await catalog.cached(session)
    await _to_subject(session, snapshot, subject_id, visitor, text_shown=None)
    await _from_subject(session, snapshot, visitor)


async def forget_subject(session: AsyncSession, subject_id: uuid.UUID) -> None:
    """Erasure: the subject's devices are unlinked, and their evidence loses what points at the person."""
    await repository.forget_subject(session, subject_id)


async def purge_expired_evidence(session: AsyncSession) -> int:
    """Delete the choices whose evidence is past its retention (the `consent_records` purpose's rule, counted
    from the choice); returns how many events went."""
    purpose = (await catalog.cached(session)).purpose(EVIDENCE_PURPOSE)
    if purpose is None:
        return 0
    cutoff = add_period(utc_now(), purpose.retention.get("period"), sign=-1)
    await transaction(session)
    return await repository.purge_before(session, cutoff)
