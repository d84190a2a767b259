"""Classify URL hosts without DNS.

Two jobs: refuse what EvoLink refuses (private/internal callback and input hosts, §5), and
keep the simulator itself from ever sending traffic anywhere but loopback. Names are never
resolved: a DNS lookup would already leave the machine, and "localhost" is the only name
whose meaning is fixed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Literal

from yarl import URL

HostKind = Literal["loopback", "private", "public", "name"]


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Browsers and libc also read shorthand/decimal/hex IPv4 ("127.1", "2130706433",
        # "0x7f000001"); a blocklist that misses those is trivially bypassed.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify_host(host: str | None) -> HostKind:
    """loopback / private (any non-global address) / public (global IP literal) / name."""
    if not host:
        return "private"
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    address = _parse_ip(host)
    if address is None:
        return "name"
    if address.is_loopback:
        return "loopback"
    # is_global is False for 10/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10, 0.0.0.0,
    # fc00::/7, fe80::/10, documentation and reserved ranges.
    if not address.is_global or address.is_multicast:
        return "private"
    return "public"


def host_of(url: str) -> str | None:
    try:
        return URL(url).host
    except (ValueError, TypeError):
        return None


def is_loopback_url(url: str) -> bool:
    """True when connecting to `url` cannot leave this machine."""
    return classify_host(host_of(url)) == "loopback"
