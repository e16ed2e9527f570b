"""Sending webhooks: Standard Webhooks signatures, retries with backoff and jitter over about a day,
410 disables the endpoint, Retry-After is honoured, every attempt is recorded.

At least once: a delivery is claimed with a lease and committed before the request is sent; the outcome is
recorded afterwards. A worker that dies in between leaves the lease to expire, and the delivery is sent
again."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import unit_of_work
from app.core.time import rfc3339, utc_now
from app.webhooks import service
from app.webhooks.models import OutboxEvent, WebhookEndpoint
from app.webhooks.urls import UnsafeURL, resolve

# Delay before each retry (Standard Webhooks' suggestion): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h —
# about 27 hours in all, each stretched or shrunk by up to 20 % so that retries do not arrive in step.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
LEASE = timedelta(minutes=2)
MAX_RETRY_AFTER = timedelta(hours=24)

log = logging.getLogger("app.webhooks")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: v1, then base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def next_delay(attempts: int, retry_after: timedelta | None) -> timedelta | None:
    """Wait before the next try after `attempts` failures; None when it is time to give up."""
    if attempts > len(RETRY_DELAYS):
        return None
    delay = timedelta(seconds=RETRY_DELAYS[attempts - 1] * random.uniform(0.8, 1.2))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value))
    try:
        return max(parsedate_to_datetime(value) - utc_now(), timedelta(0))
    except (TypeError, ValueError):
        return None


@dataclass
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: timedelta | None
    duration_ms: int


async def _send(
    http: httpx.AsyncClient, settings: Settings, endpoint: WebhookEndpoint, secret: str, event: OutboxEvent
) -> Outcome:
    body = json.dumps(
        {
            "type": event.type,
            "timestamp": rfc3339(event.created_at),
            "data": event.payload,
        },
        separators=(",", ":"),
    ).encode()
    message_id = f"msg_{event.id.hex}"
    timestamp = int(time.time())
    started = time.perf_counter()
    try:
        # Resolved and vetted again now: the name may point elsewhere than at registration (DNS rebinding),
        # so the request goes to the vetted address, with the name in Host and TLS SNI.
        target = await resolve(
            endpoint.url,
            require_https=settings.env == "production",
            allow_private=settings.webhook_allow_private_addresses,
        )
        response = await http.post(
            target.connect_url,
            content=body,
            extensions={"sni_hostname": target.host},
            headers={
                "content-type": "application/json",
                "host": target.host_header,
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, message_id, timestamp, body),
                "user-agent": "WeSafe-Privacy-Webhooks/1",
            },
        )
    except UnsafeURL as exc:
        # Not a failure of the receiver's: the worker's own settings refuse it, so its operator must hear.
        log.warning(
            "webhook delivery refused",
            extra={"endpoint_id": str(endpoint.id), "event_type": event.type, "reason": str(exc)},
        )
        return Outcome(None, f"refused: {exc}", None, _ms(started))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}", None, _ms(started))
    return Outcome(response.status_code, None, _retry_after(response), _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    limit: int = 20,
) -> int:
    """Claim due deliveries (committed), send each, record each outcome (committed). Returns how many."""
    async with unit_of_work(sessions) as session:
        claimed = await service.claim_due(session, lease=LEASE, limit=limit)
    for delivery_id in claimed:
        async with unit_of_work(sessions) as session:
            parts = await service.to_send(session, delivery_id)
        if parts is None:
            continue
        # The session is closed (its objects stay loaded): no transaction is open while the request is out.
        endpoint, event, secret = parts
        attempted_at = utc_now()
        outcome = await _send(http, settings, endpoint, secret, event)
        async with unit_of_work(sessions) as session:
            await service.record_attempt(
                session,
                delivery_id,
                attempted_at=attempted_at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                retry_in=functools.partial(next_delay, retry_after=outcome.retry_after),
            )
    return len(claimed)


def http_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects: a redirect could lead anywhere, including where the URL check would not let us go.
    return httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)


async def run_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, http: httpx.AsyncClient
) -> int:
    """One round: plan new deliveries, send the due ones. Returns the work done (0 when idle)."""
    async with unit_of_work(sessions) as session:
        dispatched = await service.dispatch(session)
    return dispatched + await deliver_due(sessions, settings, http)
