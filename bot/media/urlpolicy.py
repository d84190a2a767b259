"""Where the bot may download from (server-side request forgery guard), per kind of file.

A link typed into ``/edit video_url:`` makes *our* server connect somewhere. Without a check,
``http://169.254.169.254/`` or ``http://localhost:8080/metrics`` would turn the bot into a proxy
into its own network; an attachment or result URL that redirects there would do the same. So
every download has a policy (:class:`FetchPolicies`: one per kind of file) and every hop (the
URL and each redirect) is checked before connecting: scheme and host first, then every address
the host name resolves to. The fetcher then connects to one of exactly those addresses, so a
DNS answer that changes between check and connect (DNS rebinding) cannot redirect the
connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final

from aiohttp.abc import AbstractResolver
from pydantic import BaseModel, ConfigDict
from yarl import URL

from bot.i18n import N_
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

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits; a gateway would forward there.
_NAT64: Final = IPv6Network("64:ff9b::/96")

# Where Discord serves attachments (discord.com/developers/docs/resources/message, attachment
# object: ``url`` is the source on cdn.discordapp.com, ``proxy_url`` the media.discordapp.net
# proxy; docs "Image Formatting": CDN base https://cdn.discordapp.com).
DISCORD_CDN_HOSTS: Final = ("cdn.discordapp.com", "media.discordapp.net")


class UrlPolicy(BaseModel):
    """Strict by default: https only, public addresses only, any host.

    ``allow_http``/``allow_private`` exist for tests and local demos over loopback.
    ``allowed_networks`` exempts specific networks from the public-address rule (an internal
    media host, or 127.0.0.1/32 in tests) without opening all private space.
    ``hosts``, when set, is the only hosts (``name`` or ``name:port`` when the port is not the
    scheme's default) that may be fetched from, redirects included.
    """

    model_config = ConfigDict(frozen=True)

    allow_http: bool = False
    allow_private: bool = False
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    hosts: tuple[str, ...] = ()

    def parse(self, text: str) -> URL:
        """``text`` as a URL this policy allows (before any lookup), or :class:`MediaRejected`."""
        # Control characters: yarl would drop tabs and newlines silently (as the URL standard
        # says); a link that needs them is not one a person typed.
        if len(text) > MAX_URL_CHARS or _CONTROL.search(text):
            raise _invalid()
        try:
            url = URL(text)
            self.check_url(url)
        except ValueError:  # yarl parses some parts lazily (host, port) and raises then
            raise _invalid() from None
        return url

    def check_url(self, url: URL) -> None:
        """Refuse a malformed link, a scheme other than https (http when allowed), or a host
        outside ``hosts``."""
        allowed = ("https", "http") if self.allow_http else ("https",)
        if url.scheme not in allowed:
            raise MediaRejected(N_("Links must use https://"), code="url_insecure")
        try:
            host = url.raw_host
            key = _host_key(url)  # reads the port, which yarl parses only now
        except ValueError:  # a redirect's Location is parsed here, not in parse()
            raise _invalid() from None
        if not host or not (_is_ip_literal(host) or _HOST_NAME.fullmatch(host)):
            raise _invalid()
        if self.hosts and key not in self.hosts:
            raise MediaRejected(
                N_("That file is not on a server the bot downloads from"),
                code="url_host_not_allowed",
            )

    def address_allowed(self, address: IPAddress) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        return self.allow_private or is_public_address(address)

    async def resolve(self, url: URL, resolver: AbstractResolver) -> list[str]:
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
            addresses = await _lookup(resolver, host, url.port or 443)
        if not addresses:
            raise unresolvable()
        if not all(self.address_allowed(a) for a in addresses):
            raise MediaRejected(
                N_("That link points to a private network address"), code="url_private"
            )
        return [str(a) for a in addresses]


_STRICT: Final = UrlPolicy()
_DISCORD_ATTACHMENTS: Final = UrlPolicy(hosts=DISCORD_CDN_HOSTS)


def require_https(url: str) -> None:
    """The link rule a front end applies as a link is typed (https, a host), before the
    engine's full checks: the strict policy's :meth:`UrlPolicy.parse`, whatever the
    deployment allows for fetching."""
    _STRICT.parse(url.strip())


class FetchPolicies(BaseModel):
    """The one policy for each kind of file the bot downloads, redirect hops included.

    - member links: public https (http and private addresses only where ``insecure``: tests
      and local demos, ``ALLOW_INSECURE_MEDIA_LINKS``);
    - Discord attachments (clip and reference images): https from Discord's CDN hosts, or,
      when the bot talks to another Discord-compatible endpoint (the emulator), that
      endpoint's own host, whose attachments it serves;
    - provider results: public https, like member links (the provider's storage host is not
      documented, so no host list), insecure likewise only in tests and demos.
    """

    model_config = ConfigDict(frozen=True)

    member_links: UrlPolicy = _STRICT
    attachments: UrlPolicy = _DISCORD_ATTACHMENTS
    results: UrlPolicy = _STRICT

    @classmethod
    def build(cls, *, discord_api_base: str | None, insecure: bool) -> FetchPolicies:
        """``discord_api_base`` is None for Discord itself, else the endpoint the bot uses."""
        open_links = UrlPolicy(allow_http=insecure, allow_private=insecure)
        attachments = _DISCORD_ATTACHMENTS
        if discord_api_base is not None:
            api = URL(discord_api_base)
            # The operator chose this endpoint: its address may be private (loopback).
            attachments = UrlPolicy(
                allow_http=api.scheme == "http", allow_private=True, hosts=(_host_key(api),)
            )
        return cls(member_links=open_links, attachments=attachments, results=open_links)


def _host_key(url: URL) -> str:
    host = (url.raw_host or "").lower().rstrip(".")
    return host if url.is_default_port() else f"{host}:{url.port}"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _invalid() -> MediaRejected:
    return MediaRejected(N_("That link is not a valid web address"), code="url_invalid")


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


async def _lookup(resolver: AbstractResolver, host: str, port: int) -> list[IPAddress]:
    # The session's resolver (aiodns): never a thread of the default pool, where a lookup
    # would wait behind file work.
    try:
        infos = await resolver.resolve(host, port, family=socket.AF_UNSPEC)
    except (OSError, UnicodeError, ValueError) as exc:  # aiohttp raises OSError for DNS errors
        raise unresolvable() from exc
    seen: dict[IPAddress, None] = {}  # ordered de-duplication (one entry per protocol)
    for info in infos:
        seen.setdefault(ipaddress.ip_address(info["host"]), None)
    return list(seen)


def unresolvable() -> MediaRejected:
    return MediaRejected(N_("Could not find the server for that link"), code="url_unresolvable")
