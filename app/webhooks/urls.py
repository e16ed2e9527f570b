"""Where webhooks may go: never to loopback, link-local, private or otherwise non-public addresses (SSRF),
checked after DNS resolution, at registration and again before every delivery."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

# The setting that lets webhooks reach private addresses (development only), named in refusals.
ALLOW_PRIVATE_FLAG = "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"


class UnsafeURL(ValueError):
    """The URL cannot be a webhook target; the message says why."""


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to `address`, but speak to `host` (Host header, TLS SNI)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str

    @property
    def connect_url(self) -> str:
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve(url: str, *, require_https: bool, allow_private: bool) -> Target:
    """Parse, resolve and vet `url`; raises UnsafeURL. Every address the name resolves to must be public, so
    that a name with one public and one private address cannot be used to reach the private one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("not a valid URL") from exc
    if parts.scheme not in ("https", "http") or (require_https and parts.scheme != "https"):
        raise UnsafeURL("the URL must use https" if require_https else "the URL must use http or https")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeURL("the URL must name a host, without credentials")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(parts.hostname)
        addresses = [literal]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise UnsafeURL(f"the host {parts.hostname!r} cannot be resolved") from exc
        # An AF_INET or AF_INET6 socket address starts with the host as a string.
        addresses = [ipaddress.ip_address(cast(str, info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeURL(f"the host {parts.hostname!r} has no address")
    if not allow_private and not all(_is_public(a) for a in addresses):
        raise UnsafeURL(
            "the URL reaches a loopback, link-local, private or reserved address (in development only, "
            f"{ALLOW_PRIVATE_FLAG}=true on the API and on the worker allows it)"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, str(addresses[0]), path)
