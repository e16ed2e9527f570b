"""Sending webhooks: Standard Webhooks signatures, retries with backoff and jitter over about a day,
410 disables the endpoint, Retry-After is honoured, every attempt is recorded.

At least once: each delivery is leased just before it is sent, for the send's timeout plus a margin
(PRIVACY_WEBHOOK_LEASE_MARGIN_SECONDS), and the claim is committed before the request goes out; the outcome is
recorded afterwards, if the claim's owner still holds the lease. A worker that dies in between leaves the
lease to run out (seconds, not minutes), and the delivery is sent again. A worker that stalls past its lease
(the delivery was taken over) records its attempt, which changes nothing else.

Endpoints are served side by side: each endpoint's deliveries one at a time, oldest due first, and up to
PRIVACY_WEBHOOK_CONCURRENCY sends in flight at once, so that a slow receiver holds up only itself."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
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
from app.webhooks.schemas import EventType
from app.webhooks.urls import UnsafeURL, resolve

# Delay before each retry (Standard Webhooks' suggestion): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h —
# about 27 hours in all, each stretched or shrunk by up to 20 % so that retries do not arrive in step.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_RETRY_AFTER = timedelta(hours=24)

log = logging.getLogger("app.webhooks")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: v1, then base64 HMAC-SHA256 over `id.timestamp.body`, keyed by the secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signatures(secret: str, previous: str | None, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` with the current secret's signature, and after it the previous secret's while a
    rotation's overlap lasts, space-separated: Standard Webhooks receivers accept any one that matches."""
    signed = [sign(secret, message_id, timestamp, body)]
    if previous is not None:
        signed.append(sign(previous, message_id, timestamp, body))
    return " ".join(signed)


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


def _body(event: OutboxEvent) -> tuple[bytes, dict[str, str]]:
    """What is sent, and its own headers: the envelope (type, timestamp, data); an OpenDSR callback is the
    spec's callback object itself, with the OpenDSR headers, both made when the event was written."""
    if event.type == EventType.opendsr_status_changed:
        return str(event.payload["body"]).encode(), dict(event.payload.get("headers") or {})
    envelope = {"type": event.type, "timestamp": rfc3339(event.created_at), "data": event.payload}
    return json.dumps(envelope, separators=(",", ":")).encode(), {}


async def _send(
    http: httpx.AsyncClient,
    settings: Settings,
    endpoint: WebhookEndpoint,
    secret: str,
    event: OutboxEvent,
    previous_secret: str | None = None,
) -> Outcome:
    body, own_headers = _body(event)
    message_id = f"msg_{event.id.hex}"
    timestamp = int(time.time())
    started = time.perf_counter()
    try:
        # The whole of it (resolving, connecting, sending, reading) within the timeout: httpx's timeout bounds
        # each step, and the lease counts on the total.
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            message = (message_id, timestamp, body)
            signature = signatures(secret, previous_secret, message_id, timestamp, body)
            return await _post(http, settings, endpoint, event.type, signature, message, started, own_headers)
    except TimeoutError:
        return Outcome(None, f"timed out after {settings.webhook_timeout_seconds:g} s", None, _ms(started))


async def _post(
    http: httpx.AsyncClient,
    settings: Settings,
    endpoint: WebhookEndpoint,
    event_type: str,
    signature: str,
    message: tuple[str, int, bytes],
    started: float,
    own_headers: dict[str, str] | None = None,
) -> Outcome:
    message_id, timestamp, body = message
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
                "webhook-signature": signature,
                "user-agent": "WeSafe-Privacy-Webhooks/1",
                **(own_headers or {}),
            },
        )
    except UnsafeURL as exc:
        # Not a failure of the receiver's: the worker's own settings refuse it, so its operator must hear.
        log.warning(
            "webhook delivery refused",
            extra={"endpoint_id": str(endpoint.id), "event_type": event_type, "reason": str(exc)},
        )
        return Outcome(None, f"refused: {exc}", None, _ms(started))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}", None, _ms(started))
    return Outcome(response.status_code, None, _retry_after(response), _ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def lease_for(settings: Settings) -> timedelta:
    """How long a claim holds a delivery: the longest a send may take, and a margin to record its outcome."""
    return timedelta(seconds=settings.webhook_timeout_seconds + settings.webhook_lease_margin_seconds)


class Deliverer:
    """Sends what is due: a task per endpoint with deliveries due (draining them one at a time), at most
    `webhook_concurrency` sends in flight at once. Each delivery is claimed (leased, committed) just before
    its send, and its outcome recorded after it, each in a transaction of its own: none is open while a
    request is out."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, http: httpx.AsyncClient
    ) -> None:
        self._sessions, self._settings, self._http = sessions, settings, http
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._lease = lease_for(settings)
        self._stopping = False
        self.draining: dict[uuid.UUID, asyncio.Task[int]] = {}

    async def start_due(self, *, limit: int = 100) -> int:
        """Start draining each endpoint with deliveries due that is not being drained here already; how many
        were started."""
        async with unit_of_work(self._sessions) as session:
            endpoints = await service.endpoints_due(session, limit=limit, besides=list(self.draining))
        started = 0
        for endpoint_id in endpoints:
            if endpoint_id in self.draining:
                continue
            task = asyncio.create_task(self._drain(endpoint_id), name=f"webhooks to {endpoint_id}")
            self.draining[endpoint_id] = task
            task.add_done_callback(functools.partial(self._drained, endpoint_id))
            started += 1
        return started

    def _drained(self, endpoint_id: uuid.UUID, task: asyncio.Task[int]) -> None:
        self.draining.pop(endpoint_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Its delivery in hand (if any) stays leased until the lease runs out, then goes out again.
            log.error(
                "webhook delivery failed",
                extra={
                    "endpoint_id": str(endpoint_id),
                    "error": type(error).__name__,
                    "detail": str(error)[:300],
                },
            )

    async def _drain(self, endpoint_id: uuid.UUID) -> int:
        """Send an endpoint's due deliveries, one at a time, until none is due (or the worker stops)."""
        sent = 0
        while True:
            async with self._slots:  # the lease starts once a slot is free, just before the send
                if self._stopping:
                    break
                async with unit_of_work(self._sessions) as session:
                    claimed = await service.claim_next(session, endpoint_id, lease=self._lease)
                if claimed is None:
                    return sent
                attempted_at = utc_now()
                outcome = await _send(
                    self._http,
                    self._settings,
                    claimed.endpoint,
                    claimed.secret,
                    claimed.event,
                    claimed.previous_secret,
                )
            async with unit_of_work(self._sessions) as session:
                await service.record_attempt(
                    session,
                    claimed.delivery_id,
                    owner=claimed.owner,
                    attempted_at=attempted_at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    retry_in=functools.partial(next_delay, retry_after=outcome.retry_after),
                )
            sent += 1
        return sent

    async def finish(self) -> int:
        """Wait for every endpoint being drained; how many were sent. The first failure is raised, once all
        are done."""
        tasks = list(self.draining.values())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

    async def stop(self) -> None:
        """Start no new sends; wait for those in flight to be sent and recorded."""
        self._stopping = True
        await asyncio.gather(*self.draining.values(), return_exceptions=True)


def http_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects: a redirect could lead anywhere, including where the URL check would not let us go.
    return httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)


async def run_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, http: httpx.AsyncClient
) -> int:
    """One round: plan new deliveries, send what is due (every endpoint side by side) until nothing more is.
    Returns the work done (0 when idle)."""
    async with unit_of_work(sessions) as session:
        dispatched = await service.dispatch(session)
    deliverer = Deliverer(sessions, settings, http)
    await deliverer.start_due()
    return dispatched + await deliverer.finish()


async def serve(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event, *, interval: float
) -> None:
    """`privacy worker`: plan and send until `stop` is set, polling every `interval` seconds when there is
    nothing new. Each endpoint is drained as soon as something is due for it, whatever the others are doing.
    A failure (the database away, restarting) is logged in one line, and the worker waits (0.5 s, doubling
    up to PRIVACY_WORKER_BACKOFF_MAX_SECONDS, with jitter) and goes on. On stop, the sends in flight finish
    and are recorded."""
    async with http_client(settings) as http:
        deliverer = Deliverer(sessions, settings, http)
        backoff = Backoff(cap=settings.worker_backoff_max_seconds)
        try:
            while not stop.is_set():
                try:
                    async with unit_of_work(sessions) as session:
                        dispatched = await service.dispatch(session)
                    started = await deliverer.start_due()
                except Exception as exc:  # noqa: BLE001 - whatever failed, the worker carries on
                    delay = backoff.next()
                    log.warning(
                        "webhook worker: round failed; retrying",
                        extra={
                            "error": type(exc).__name__,
                            "detail": str(exc).splitlines()[0][:300] if str(exc) else "",
                            "retry_in_seconds": round(delay, 2),
                            "failures": backoff.failures,
                        },
                    )
                    await _wait(stop, delay)
                    continue
                if backoff.failures:
                    log.info("webhook worker: recovered", extra={"failures": backoff.failures})
                    backoff.reset()
                if not dispatched and not started:
                    await _wait(stop, interval)
        finally:
            await deliverer.stop()


class Backoff:
    """Exponential backoff with a cap and jitter: 0.5 s, 1 s, 2 s, ... up to `cap`, each 50-100 % of that
    (so that workers that failed together do not retry together)."""

    def __init__(self, *, cap: float, base: float = 0.5) -> None:
        self.cap, self.base, self.failures = float(cap), float(base), 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * float(2 ** min(self.failures, 30)))
        self.failures += 1
        return ceiling * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
