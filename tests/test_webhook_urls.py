"""Where webhooks may go, as classes: every way IPv6 carries an IPv4 address (mapped, NAT64, 6to4,
IPv4-compatible, Teredo) around every IPv4 class a webhook must never reach."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from app.webhooks.urls import UnsafeURL, resolve
from tests.support import ADMIN, assert_problem

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

FORBIDDEN_V4 = {
    "loopback": "127.0.0.1",
    "loopback-other": "127.1.2.3",
    "private-10": "10.1.2.3",
    "private-172": "172.16.0.1",
    "private-192": "192.168.1.1",
    "metadata": "169.254.169.254",
    "link-local": "169.254.1.1",
    "cgnat": "100.64.0.1",
    "unspecified": "0.0.0.0",
    "this-network": "0.1.2.3",
    "benchmarking": "198.18.0.1",
    "documentation": "192.0.2.1",
    "multicast": "224.0.0.1",
    "broadcast": "255.255.255.255",
}
PUBLIC_V4 = "93.184.216.34"
TEREDO_SERVER = 0x4136E378  # 65.54.227.120, a public Teredo server


def _mapped(v4: V4) -> V6:
    return V6(0xFFFF << 32 | int(v4))


def _nat64(v4: V4) -> V6:  # RFC 6052's well-known prefix, 64:ff9b::/96
    return V6(0x0064FF9B << 96 | int(v4))


def _nat64_local_48(v4: V4) -> V6:  # RFC 8215's local-use prefix 64:ff9b:1::/48, RFC 6052's /48 layout
    return V6(0x0064FF9B0001 << 80 | (int(v4) >> 16) << 64 | (int(v4) & 0xFFFF) << 40)


def _nat64_local_96(v4: V4) -> V6:  # the same local-use prefix, the IPv4 address in the last 32 bits
    return V6(0x0064FF9B0001 << 80 | int(v4))


def _sixtofour(v4: V4) -> V6:  # 2002:a.b.c.d::/48
    return V6(0x2002 << 112 | int(v4) << 80 | 1)


def _compatible(v4: V4) -> V6:  # ::a.b.c.d (deprecated by RFC 4291)
    return V6(int(v4))


def _teredo(v4: V4) -> V6:  # 2001:0:server:flags:~port:~client, the client address XOR-ed
    return V6(0x20010000 << 96 | TEREDO_SERVER << 64 | (443 ^ 0xFFFF) << 32 | (int(v4) ^ 0xFFFFFFFF))


WRAPPINGS: dict[str, Callable[[V4], V6]] = {
    "mapped": _mapped,
    "nat64": _nat64,
    "nat64-local-48": _nat64_local_48,
    "nat64-local-96": _nat64_local_96,
    "6to4": _sixtofour,
    "compatible": _compatible,
    "teredo": _teredo,
}
# Wrappings refused whatever they carry (docs/security.md, "Outbound webhooks"): Teredo tunnels to a client
# behind a NAT through a relay, and the local-use NAT64 prefix is translated by a gateway of the operator's.
ALWAYS_REFUSED = {"teredo", "nat64-local-48", "nat64-local-96"}


def _url(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"https://[{address}]/hook" if address.version == 6 else f"https://{address}/hook"


@pytest.mark.parametrize("kind", FORBIDDEN_V4)
@pytest.mark.parametrize("wrapping", WRAPPINGS)
async def test_every_wrapping_of_a_forbidden_ipv4_address_is_refused(wrapping, kind):
    inner = V4(FORBIDDEN_V4[kind])
    with pytest.raises(UnsafeURL, match="loopback, link-local, private or reserved"):
        await resolve(_url(inner), require_https=True, allow_private=False)
    with pytest.raises(UnsafeURL, match="loopback, link-local, private or reserved"):
        await resolve(_url(WRAPPINGS[wrapping](inner)), require_https=True, allow_private=False)


@pytest.mark.parametrize("wrapping", WRAPPINGS)
async def test_a_wrapped_public_address_is_allowed_except_through_a_tunnel(wrapping):
    wrapped = WRAPPINGS[wrapping](V4(PUBLIC_V4))
    if wrapping in ALWAYS_REFUSED:
        with pytest.raises(UnsafeURL):
            await resolve(_url(wrapped), require_https=True, allow_private=False)
    else:
        target = await resolve(_url(wrapped), require_https=True, allow_private=False)
        assert ipaddress.ip_address(target.address) == wrapped  # connect to what was vetted, as given


def test_the_wrappings_carry_what_they_claim():
    """The test's own constructions, checked against the standard library's decoders where it has one."""
    inner = V4("192.0.2.33")
    assert _mapped(inner).ipv4_mapped == inner
    assert _sixtofour(inner).sixtofour == inner
    assert _teredo(inner).teredo == (V4(TEREDO_SERVER), inner)
    assert str(_nat64(inner)) == "64:ff9b::c000:221"
    assert str(_nat64_local_48(inner)) == "64:ff9b:1:c000:2:2100::"


@pytest.mark.parametrize("wrapping", WRAPPINGS)
async def test_registration_refuses_wrapped_metadata_addresses(client, wrapping):
    url = _url(WRAPPINGS[wrapping](V4("169.254.169.254")))
    body = {"url": url, "event_types": ["consent.granted"]}
    response = await client.post("/v1/webhook-endpoints", json=body, headers=ADMIN)
    assert assert_problem(response, 422)["errors"][0]["loc"] == ["body", "url"]
