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


# IPv6 ranges that carry an IPv4 address a gateway or the host itself would reach: the address is judged by
# the IPv4 address inside (docs/security.md, "Outbound webhooks").
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: a NAT64 gateway connects to the last 32 bits
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291, deprecated: ::a.b.c.d
# Refused whatever they carry: the local-use NAT64 prefix (RFC 8215), whose layout depends on the operator's
# prefix length, and Teredo (RFC 4380), a tunnel through a relay to a client behind a NAT.
_REFUSED = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("2001::/32"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4
    (2002::/16) or IPv4-compatible (::a.b.c.d); None for any other address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _REFUSED):
            return False
        # `::` and `::1` are IPv4-compatible in form: as 0.0.0.0 and 0.0.0.1 they are refused all the same.
        inner = embedded_ipv4(address)
        if inner is not None:
            address = inner
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
