"""Address guard: keeps feed fetches away from loopback, private and metadata addresses.

The check runs on the addresses the connector is about to dial (inside the resolver), so a
name that resolves differently on a second lookup (DNS rebinding) is judged by the answer
that is actually used, on every redirect hop.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.core.errors import BlockedAddress

__all__ = [
    "ALLOW_HINT",
    "AddressPredicate",
    "GuardedResolver",
    "check_literal_host",
    "is_public_address",
    "looks_like_numeric_host",
]

AddressPredicate = Callable[[str], bool]

ALLOW_HINT = "(set SW_ALLOW_PRIVATE_FEEDS=true to allow)"

# NAT64 well-known prefix: the low 32 bits are the IPv4 address the gateway will dial.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# Legacy numeric host forms (2130706433, 0x7f000001, 127.1) that getaddrinfo maps to an IP.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def _v4_is_public(addr: ipaddress.IPv4Address) -> bool:
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or addr in _SHARED_CGNAT
        or not addr.is_global
    )


def _v6_is_public(addr: ipaddress.IPv6Address) -> bool:
    # Addresses that carry an IPv4 address are judged by that address: the packet ends up there.
    if addr.ipv4_mapped is not None:
        return _v4_is_public(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        return _v4_is_public(addr.sixtofour)
    if addr in _NAT64:
        return _v4_is_public(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_site_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def is_public_address(ip: str) -> bool:
    """True only for globally routable unicast addresses; anything unparsable is not public."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_is_public(addr)
    return _v6_is_public(addr)


def looks_like_numeric_host(host: str) -> bool:
    """True for hosts such as 2130706433 or 127.1 that are IPs in disguise, not names."""
    labels = host.rstrip(".").split(".")
    return all(_NUMERIC_LABEL.fullmatch(label) for label in labels)


def check_literal_host(host: str, is_allowed: AddressPredicate = is_public_address) -> bool:
    """Judge an IP-literal host before connecting, because aiohttp skips the resolver for those.

    Returns True when `host` is an IP literal that passed, False when it is a name (the
    resolver will judge it), and raises BlockedAddress when it is a refused literal.
    """
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return False
    if not is_allowed(bare):
        raise BlockedAddress(f"{bare} is a private address {ALLOW_HINT}")
    return True


class GuardedResolver(AbstractResolver):
    """Wraps a real resolver and refuses names with any non-allowed address among the answers."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        *,
        is_allowed: AddressPredicate = is_public_address,
    ) -> None:
        self._inner = inner if inner is not None else ThreadedResolver()
        self._is_allowed = is_allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family=family)
        # Refuse if any answer is private: the connector may try them all (happy eyeballs).
        for result in results:
            if not self._is_allowed(result["host"]):
                raise BlockedAddress(
                    f"{host} resolves to a private address {result['host']} {ALLOW_HINT}"
                )
        return results

    async def close(self) -> None:
        await self._inner.close()
