"""Rate limits per client address: fixed windows counted in each worker's memory.

The address is the connection's peer as the ASGI server reports it. Behind a reverse proxy that is the
proxy, unless the server is told to trust it: `privacy serve` has uvicorn apply `X-Forwarded-For` only from
the proxies in PRIVACY_FORWARDED_ALLOW_IPS (docs/operations.md#behind-a-reverse-proxy), so that every
reader of `client_address` (rate limits, login attempts, a choice's evidence) sees the same client. Each
worker counts on its own, so with N workers an address gets at most N times the limit: a bound against
flooding, not an exact quota.

Our own rather than the `limits` library's in-memory storage, which starts a timer thread to expire its
counters 10 ms after a hit: under load, a thread every few requests on the hottest write (bench/README.md).
Here the counters of past windows are dropped when the next window starts."""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections import deque

from starlette.requests import Request

from app.core.errors import TooManyRequests

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE = re.compile(r"^(\d{1,9})/(second|minute|hour|day)$")


def parse_rate(rate: str) -> tuple[int, int]:
    """ "30/minute" → (30, 60): how many per how many seconds."""
    match = RATE.fullmatch(rate.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"{rate!r} is not a rate like 30/minute (second, minute, hour or day)")
    return int(match.group(1)), _UNITS[match.group(2)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _key(address: str) -> str:
    """An IPv6 client usually holds a whole /64: count it as one."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    except ValueError:
        return address


class AddressLimit:
    """At most `rate` (e.g. "30/minute") requests per client address, per fixed window."""

    def __init__(self, rate: str) -> None:
        self.limit, self.seconds = parse_rate(rate)
        self.window = -1
        self.counts: dict[str, int] = {}

    def check(self, request: Request) -> None:
        """Count the request, or refuse it (429 with Retry-After) past the limit."""
        now = time.monotonic()
        window = int(now // self.seconds)
        if window != self.window:
            self.window, self.counts = window, {}
        key = _key(client_address(request))
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        if count > self.limit:
            raise TooManyRequests(
                "Too many requests from your address; wait a moment and try again",
                retry_after=max(1, math.ceil((window + 1) * self.seconds - now)),
            )


class Ceiling:
    """At most `limit` events per `seconds` in this process, whoever causes them: a sliding window (the times
    of the last `limit` events), so exact, with no window edge to burst across. Each worker counts on its own,
    like AddressLimit: with N workers, N times the limit."""

    def __init__(self, limit: int, seconds: int = 60) -> None:
        self.limit, self.seconds = limit, seconds
        self.times: deque[float] = deque()

    def take(self, detail: str) -> None:
        """Count one event, or refuse it (429, Retry-After: when the oldest counted one leaves the window). No
        await between the check and the count: in one event loop, concurrent callers cannot both pass."""
        now = time.monotonic()
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) >= self.limit:
            raise TooManyRequests(detail, retry_after=max(1, math.ceil(self.times[0] + self.seconds - now)))
        self.times.append(now)
