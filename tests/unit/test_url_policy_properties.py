"""Properties of the URL policy, for any input: a clear refusal or a URL the policy allows."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from bot.media.errors import MediaRejected
from bot.media.urlpolicy import DISCORD_CDN_HOSTS, FetchPolicies, UrlPolicy

STRICT = FetchPolicies.build(discord_api_base=None, insecure=False)
DEMO = FetchPolicies.build(discord_api_base="http://127.0.0.1:8088/api/v10", insecure=True)
POLICIES = [
    STRICT.member_links, STRICT.attachments, STRICT.results, DEMO.member_links, DEMO.attachments,
]

# Non-public IPv4 space: private, loopback, link-local, shared (CGNAT), "this network",
# multicast, reserved, benchmarking, documentation.
PRIVATE_V4 = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "198.18.0.0/15",
    "192.0.2.0/24",
]
PRIVATE_V6 = ["fc00::/7", "fe80::/10", "::1/128", "ff00::/8", "::/128", "2001:db8::/32"]


class NoDns(AbstractResolver):
    """An IP literal must never be looked up."""

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET
                      ) -> list[ResolveResult]:
        raise AssertionError(f"looked up {host!r}")

    async def close(self) -> None:
        return None


def embeddings(v4: IPv4Address) -> list[IPv6Address]:
    """IPv6 addresses that carry `v4` and reach it through a gateway or a mapping."""
    n = int(v4)
    return [
        IPv6Address(f"::ffff:{v4}"),  # IPv4-mapped
        IPv6Address((0x2002 << 112) | (n << 80)),  # 6to4
        IPv6Address((0x20010000 << 96) | (n ^ 0xFFFFFFFF)),  # Teredo (client, obfuscated)
        IPv6Address((0x0064FF9B << 96) | n),  # NAT64 well-known prefix
    ]


def literal_url(address: IPv4Address | IPv6Address) -> URL:
    host = f"[{address}]" if address.version == 6 else str(address)
    return URL(f"https://{host}/clip.mp4")


def refusal(policy: UrlPolicy, url: URL) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        asyncio.run(policy.resolve(url, NoDns()))
    return caught.value


any_text = st.text(max_size=200)
url_like = st.builds(
    "{}://{}{}/{}".format,
    st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "javascript", "", "h ttps"]),
    st.one_of(
        st.sampled_from([*DISCORD_CDN_HOSTS, "127.0.0.1:8088", "[::1]", "example.com", ""]),
        st.text(max_size=80),
    ),
    st.one_of(st.just(""), st.from_regex(r":[0-9]{0,7}", fullmatch=True), st.text(max_size=6)),
    st.text(max_size=40),
)


@given(text=st.one_of(any_text, url_like), policy=st.sampled_from(POLICIES))
def test_any_text_is_allowed_by_the_rules_or_refused_plainly(text: str, policy: UrlPolicy) -> None:
    try:
        url = policy.parse(text)
    except MediaRejected as error:
        assert error.code in {"url_invalid", "url_insecure", "url_host_not_allowed"}
        return
    assert url.scheme == "https" or (policy.allow_http and url.scheme == "http")
    assert url.raw_host
    if policy.hosts:
        port = "" if url.is_default_port() else f":{url.port}"
        assert f"{url.raw_host.lower().rstrip('.')}{port}" in policy.hosts


@given(location=st.one_of(any_text, url_like))
def test_any_redirect_target_is_allowed_or_refused_plainly(location: str) -> None:
    # A hop is joined to the page that sent it, then checked like the first URL.
    page = URL("https://cdn.discordapp.com/attachments/1/2/clip.mp4")
    try:
        target = page.join(URL(location))
    except ValueError:
        return  # the fetcher refuses a Location yarl cannot read as url_invalid
    for policy in POLICIES:
        with contextlib.suppress(MediaRejected):
            policy.check_url(target)


@given(text=st.one_of(any_text, url_like))
def test_discord_attachments_come_only_from_discords_cdn(text: str) -> None:
    try:
        url = STRICT.attachments.parse(text)
    except MediaRejected:
        return
    assert (url.scheme, url.raw_host.lower().rstrip(".")) in {  # type: ignore[union-attr]
        ("https", host) for host in DISCORD_CDN_HOSTS
    }


@given(network=st.sampled_from(PRIVATE_V4), data=st.data())
def test_non_public_ipv4_is_refused_directly_and_embedded_in_ipv6(
    network: str, data: st.DataObject
) -> None:
    v4 = IPv4Address(data.draw(st.ip_addresses(v=4, network=network)).packed)
    addresses: list[IPv4Address | IPv6Address] = [v4, *embeddings(v4)]
    for address in addresses:
        for policy in (STRICT.member_links, STRICT.results):
            assert refusal(policy, literal_url(address)).code == "url_private", address


@given(network=st.sampled_from(PRIVATE_V6), data=st.data())
def test_non_public_ipv6_is_refused(network: str, data: st.DataObject) -> None:
    address = data.draw(st.ip_addresses(v=6, network=network))
    assert refusal(STRICT.member_links, literal_url(address)).code == "url_private"


@given(address=st.ip_addresses(v=4))
def test_a_public_ipv4_literal_passes_without_a_lookup(address: IPv4Address) -> None:
    if address.is_global and not (address.is_multicast or address.is_reserved):
        assert asyncio.run(STRICT.member_links.resolve(literal_url(address), NoDns())) == [
            str(address)
        ]
    else:
        assert refusal(STRICT.member_links, literal_url(address)).code == "url_private"


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
control = st.characters(codec="ascii", categories=["Cc"])


@given(labels=st.lists(label, min_size=1, max_size=4), at=st.integers(0, 3), bad=control)
def test_host_names_with_control_characters_are_invalid(
    labels: list[str], at: int, bad: str
) -> None:
    host = ".".join(labels)
    at = min(at, len(host))
    text = f"https://{host[:at]}{bad}{host[at:]}.example/clip.mp4"
    with pytest.raises(MediaRejected) as caught:
        STRICT.member_links.parse(text)
    assert caught.value.code == "url_invalid"


@given(long=st.integers(64, 300), labels=st.lists(label, max_size=3))
def test_overlong_labels_and_names_are_invalid(long: int, labels: list[str]) -> None:
    host = ".".join([*labels, "a" * long, "example"])
    with pytest.raises(MediaRejected) as caught:
        STRICT.member_links.parse(f"https://{host}/clip.mp4")
    assert caught.value.code == "url_invalid"


def test_embeddings_carry_the_address() -> None:
    # Guards the strategy above: each form really embeds the IPv4 address.
    v4 = IPv4Address("10.1.2.3")
    mapped, sixtofour, teredo, nat64 = embeddings(v4)
    assert (mapped.ipv4_mapped, sixtofour.sixtofour, teredo.teredo) == (
        v4, v4, (IPv4Address("0.0.0.0"), v4)
    )
    assert nat64 == ip_address("64:ff9b::a01:203")
