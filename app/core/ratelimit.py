"""Rate limits per client address, in each worker's memory (the `limits` library's fixed windows).

The address is the connection's peer as the ASGI server reports it. Behind a reverse proxy that is the
proxy, unless the server is told to trust it: `privacy serve` (uvicorn) applies `X-Forwarded-For` only from
the addresses in `FORWARDED_ALLOW_IPS` (docs/operations.md). Each worker counts on its own, so with N workers
an address gets at most N times the limit: a bound against flooding, not an exact quota."""

from __future__ import annotations

import ipaddress
import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import Request

from app.core.errors import TooManyRequests


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _key(address: str) -> str:
    """An IPv6 client usually holds a whole /64: count it as one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


class AddressLimit:
    """At most `rate` (e.g. "30/minute") requests per client address."""

    def __init__(self, rate: str, name: str) -> None:
        self.item, self.name = parse(rate), name
        self.limiter = FixedWindowRateLimiter(MemoryStorage())

    def check(self, request: Request) -> None:
        """Count the request, or refuse it (429 with Retry-After) past the limit."""
        key = _key(client_address(request))
        if not self.limiter.hit(self.item, self.name, key):
            reset = self.limiter.get_window_stats(self.item, self.name, key).reset_time
            raise TooManyRequests(
                "Too many requests from your address; wait a moment and try again",
                retry_after=max(1, math.ceil(reset - time.time())),
            )
