"""Which user-supplied links the bot may download (server-side request forgery guard).

A link typed into ``/edit video_url:`` makes *our* server connect somewhere. Without a check,
``http://169.254.169.254/`` or ``http://localhost:8080/metrics`` would turn the bot into a proxy
into its own network. Every hop (the link and each redirect) is checked before connecting:
scheme first, then every address the host name resolves to. The fetcher then connects to one
of exactly those addresses, so a DNS answer that changes between check and connect (DNS
rebinding) cannot redirect the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final

from pydantic import BaseModel, ConfigDict
from yarl import URL

from bot.media.errors import MediaRejected

IPAddress = IPv4Address | IPv6Address

# Longer than any real media link (signed CDN links run to ~2 kB); Discord options allow 6000.
MAX_URL_CHARS: Final = 4096
# A DNS name as resolvers take it (RFC 1123 labels; `_` too, which real hosts use): anything
# else (spaces, control characters, empty or 64+ character labels) is not an address at all.
_HOST_NAME: Final = re.compile(
    r"(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?",
    re.ASCII,
)

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits; a gateway would forward there.
_NAT64: Final = IPv6Network("64:ff9b::/96")


class UrlPolicy(BaseModel):
    """Strict by default: https only, public addresses only.

    ``allow_http``/``allow_private`` exist for tests and local demos over loopback.
    ``allowed_networks`` exempts specific networks from the public-address rule (an internal
    media host, or 127.0.0.1/32 in tests) without opening all private space.
    """

    model_config = ConfigDict(frozen=True)

    allow_http: bool = False
    allow_private: bool = False
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()

    def check_url(self, url: URL) -> None:
        """Refuse a malformed link or a scheme other than https (http when allowed)."""
        allowed = ("https", "http") if self.allow_http else ("https",)
        if url.scheme not in allowed:
            raise MediaRejected("Links must use https://", code="url_insecure")
        host = url.raw_host
        if not host or not (_is_ip_literal(host) or _HOST_NAME.fullmatch(host)):
            raise _invalid()

    def address_allowed(self, address: IPAddress) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        return self.allow_private or is_public_address(address)

    async def resolve(self, url: URL) -> list[str]:
        """Addresses for ``url``'s host, all allowed by this policy, in resolver order.

        Raises :class:`MediaRejected` when the name does not resolve or when *any* address is
        refused: a name with one public and one private address is refused, because we could
        not control which one a later connection would use. Callers bound the time it may take
        (``asyncio.timeout``) and treat a timeout like :func:`unresolvable`.
        """
        self.check_url(url)
        host = url.raw_host or ""
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await _lookup(host, url.port or 443)
        if not addresses:
            raise unresolvable()
        if not all(self.address_allowed(a) for a in addresses):
            raise MediaRejected("That link points to a private network address", code="url_private")
        return [str(a) for a in addresses]


_STRICT: Final = UrlPolicy()


def require_https(url: str) -> None:
    """The link rule a front end applies as a link is typed (https, a host), before the
    engine's full checks: the strict policy's :meth:`UrlPolicy.check_url`, whatever the
    deployment allows for fetching."""
    text = url.strip()
    if len(text) > MAX_URL_CHARS:
        raise _invalid()
    try:
        parsed = URL(text)
        _STRICT.check_url(parsed)
    except ValueError:  # yarl parses some parts lazily (host, port) and raises then
        raise _invalid() from None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _invalid() -> MediaRejected:
    return MediaRejected("That link is not a valid web address", code="url_invalid")


def is_public_address(address: IPAddress) -> bool:
    """True for globally routable unicast addresses, including IPv4 embedded in IPv6."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def _lookup(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise unresolvable() from exc
    seen: dict[IPAddress, None] = {}  # ordered de-duplication (one entry per protocol)
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    return list(seen)


def unresolvable() -> MediaRejected:
    return MediaRejected("Could not find the server for that link", code="url_unresolvable")
