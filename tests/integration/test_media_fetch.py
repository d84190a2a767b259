"""Capped streaming download against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.media import fetch as fetch_module
from bot.media.errors import MB, FileNames, MediaRejected
from bot.media.fetch import FetchedFile, Fetcher, FetchLimits, UrlPolicy, fetch_to_file
from bot.media.sniff import SNIFF_BYTES
from bot.media.urlpolicy import FetchPolicies
from sandbox.demo.processes import free_port
from tests.http_doubles import FakeResolver, http_clients

BODY = os.urandom(300_000)
GZIP_BOMB = gzip.compress(b"\0" * (16 * 1024 * 1024))  # 16 MB of zeros in ~16 kB
LOOPBACK = UrlPolicy(allow_http=True, allow_private=True)
CHUNK = 64 * 1024


@dataclass
class Server:
    base: str
    port: int
    release: asyncio.Event  # handlers that stall wait for this (set at teardown)
    stream_sent: list[int] = field(default_factory=list)
    stream_done: asyncio.Event = field(default_factory=asyncio.Event)
    stall_sent: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(server: Server) -> web.Application:
    async def file(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="video/mp4")

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=request.host)

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    async def empty(request: web.Request) -> web.Response:
        return web.Response(body=b"")

    async def redirect(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        # Relative Location on purpose: it must be resolved against the current hop.
        raise web.HTTPFound("/file" if left == 0 else f"/redirect/{left - 1}")

    async def redirect_to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["target"])

    async def endless(request: web.Request) -> web.StreamResponse:
        # Chunked, no Content-Length: only counting protects the client.
        response = web.StreamResponse()
        await response.prepare(request)
        sent = 0
        try:
            while sent < 256 * MB:
                await response.write(b"\0" * CHUNK)
                sent += CHUNK
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            server.stream_sent.append(sent)
            server.stream_done.set()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10 * MB
        await response.prepare(request)
        await response.write(b"\1" * (2 * MB))
        server.stall_sent.set()
        await server.release.wait()
        return response

    async def loop(request: web.Request) -> web.Response:
        # /loop/a -> /loop/b -> /loop/a ... (or a page to itself): shorter than the redirect limit.
        name = request.match_info["name"]
        raise web.HTTPFound({"a": "/loop/b", "b": "/loop/a"}.get(name, request.path))

    async def drip(request: web.Request) -> web.StreamResponse:
        # One byte at a time, each well inside the read timeout: only the total bound stops it.
        response = web.StreamResponse()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, aiohttp.ClientConnectionResetError):
            while not server.release.is_set():
                await response.write(b"\0")
                await asyncio.sleep(0.02)  # the server's pace, not synchronisation
        return response

    async def gzip_bomb(request: web.Request) -> web.Response:
        # Ignores the identity-only request: a small body that inflates past any cap.
        return web.Response(
            body=GZIP_BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "video/mp4"}
        )

    app = web.Application()
    app.router.add_get("/file", file)
    app.router.add_get("/loop/{name}", loop)
    app.router.add_get("/drip", drip)
    app.router.add_get("/gzip-bomb", gzip_bomb)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/missing", missing)
    app.router.add_get("/empty", empty)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/endless", endless)
    app.router.add_get("/stall", stall)
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(base="", port=0, release=asyncio.Event())
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base, state.port = f"http://127.0.0.1:{port}", port
    yield state
    state.release.set()
    await runner.cleanup()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes], str]]:
    """A server that answers any request with fixed raw bytes and closes: lets us lie."""
    responses: dict[str, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        await reader.readuntil(b"\r\n\r\n")
        path = request_line.split()[1].decode()
        writer.write(responses[path])
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]

    def serve(raw: bytes) -> str:
        path = f"/r{len(responses)}"
        responses[path] = raw
        return f"http://127.0.0.1:{port}{path}"

    yield serve
    srv.close()
    await srv.wait_closed()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with http_clients() as http:
        yield http.downloads


def limits(max_bytes: int = MB, **extra: Any) -> FetchLimits:
    return FetchLimits(max_bytes=max_bytes, **extra)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def refused(coro: Awaitable[FetchedFile]) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        await coro
    return caught.value


# --- normal downloads ----------------------------------------------------------------------


async def test_downloads_and_hashes(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    dest = tmp_path / "clip"
    fetched = await fetch_to_file(fetcher, f"{server.base}/file", dest, limits(), policy=LOOPBACK)
    assert fetched == FetchedFile(
        path=dest, size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest(),
        head=BODY[:SNIFF_BYTES],  # the type can be told without reading the file again
    )
    assert dest.read_bytes() == BODY
    assert leftovers(tmp_path) == ["clip"]


async def test_replaces_existing_destination(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    dest = tmp_path / "clip"
    dest.write_bytes(b"old")
    await fetch_to_file(fetcher, f"{server.base}/file", dest, limits(), policy=LOOPBACK)
    assert dest.read_bytes() == BODY


async def test_empty_body(server: Server, fetcher: Fetcher, tmp_path: Path) -> None:
    fetched = await fetch_to_file(
        fetcher, f"{server.base}/empty", tmp_path / "e", limits(), policy=LOOPBACK
    )
    assert (fetched.size, fetched.sha256) == (0, hashlib.sha256(b"").hexdigest())


async def test_body_exactly_at_the_cap_is_accepted(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    fetched = await fetch_to_file(
        fetcher, f"{server.base}/file", tmp_path / "f", limits(len(BODY)), policy=LOOPBACK
    )
    assert fetched.size == len(BODY)


# --- the byte cap ----------------------------------------------------------------------------


async def test_honest_content_length_over_cap_is_refused_before_reading(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/file", tmp_path / "c", limits(250_000), names=FileNames.clip(),
            policy=LOOPBACK,
        )
    )
    assert (error.code, error.reason) == (
        "download_too_large",
        "The clip is 0.3 MB; the limit is 0.25 MB",
    )
    assert leftovers(tmp_path) == []


async def test_no_content_length_stops_reading_soon_after_the_cap(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/endless", tmp_path / "c", limits(MB), names=FileNames.clip(),
            policy=LOOPBACK,
        )
    )
    assert (error.code, error.reason) == (
        "download_too_large",
        "The clip is larger than the 1 MB limit",
    )
    assert leftovers(tmp_path) == []
    await asyncio.wait_for(server.stream_done.wait(), 10)
    # The server could push what the socket buffers hold (a few MB on loopback) and no more:
    # the client hung up instead of draining the 256 MB body.
    assert server.stream_sent[0] < 32 * MB


async def test_content_length_claiming_more_than_the_cap(
    raw_server: Callable[[bytes], str], fetcher: Fetcher, tmp_path: Path
) -> None:
    url = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 140200000\r\n\r\n" + b"x" * 100)
    error = await refused(
        fetch_to_file(
            fetcher, url, tmp_path / "c", limits(100 * MB), names=FileNames.clip(), policy=LOOPBACK
        )
    )
    assert error.reason == "The clip is 140.2 MB; the limit is 100 MB"
    assert leftovers(tmp_path) == []


async def test_content_length_larger_than_the_body(
    raw_server: Callable[[bytes], str], fetcher: Fetcher, tmp_path: Path
) -> None:
    url = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1000)
    error = await refused(fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy=LOOPBACK))
    assert error.code == "download_interrupted"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sent", [5000, 3 * MB])  # more than declared; more than the cap
async def test_content_length_smaller_than_the_body_reads_no_further(
    raw_server: Callable[[bytes], str], fetcher: Fetcher, tmp_path: Path, sent: int
) -> None:
    body = os.urandom(sent)
    url = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body)
    try:
        fetched = await fetch_to_file(fetcher, url, tmp_path / "c", limits(MB), policy=LOOPBACK)
    except MediaRejected as error:
        # aiohttp usually sees the surplus in the same read and rejects it as a broken
        # next response; either way nothing beyond the declared length is kept.
        assert error.code == "download_bad_response"
        assert leftovers(tmp_path) == []
    else:
        assert fetched.size == 1000
        assert fetched.sha256 == hashlib.sha256(body[:1000]).hexdigest()


async def test_close_delimited_body_over_cap(
    raw_server: Callable[[bytes], str], fetcher: Fetcher, tmp_path: Path
) -> None:
    url = raw_server(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (3 * MB))
    error = await refused(fetch_to_file(fetcher, url, tmp_path / "c", limits(MB), policy=LOOPBACK))
    assert error.code == "download_too_large"
    assert leftovers(tmp_path) == []


# --- failures ------------------------------------------------------------------------------


async def test_http_error_is_reported_with_status(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/missing", tmp_path / "c", limits(), names=FileNames.file(),
            policy=LOOPBACK,
        )
    )
    assert (error.code, error.http_status, error.reason) == (
        "download_http_error",
        404,
        "Could not download the file (HTTP 404)",
    )
    assert leftovers(tmp_path) == []


async def test_read_timeout_removes_the_partial_file(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/stall", tmp_path / "c", limits(20 * MB, read_timeout=0.3),
            policy=LOOPBACK,
        )
    )
    assert error.code == "download_timeout"
    assert error.reason == "Downloading the file took too long; try again or use a smaller file"
    assert leftovers(tmp_path) == []


async def test_total_timeout(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/stall", tmp_path / "c", limits(20 * MB, total_timeout=0.3),
            policy=LOOPBACK,
        )
    )
    assert error.code == "download_timeout"
    assert leftovers(tmp_path) == []


async def test_connection_refused(fetcher: Fetcher, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    error = await refused(
        fetch_to_file(
            fetcher, f"http://127.0.0.1:{port}/x", tmp_path / "c", limits(), names=FileNames.clip(),
            policy=LOOPBACK,
        )
    )
    assert (error.code, error.reason) == (
        "download_unreachable",
        "Could not download the clip: the server could not be reached",
    )


async def test_cancellation_removes_the_partial_file(
    server: Server,
    fetcher: Fetcher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrote_to_disk = asyncio.Event()
    original = fetch_module._PartFile._flush

    async def flush_and_tell(self: Any) -> None:
        await original(self)
        wrote_to_disk.set()

    monkeypatch.setattr(fetch_module._PartFile, "_flush", flush_and_tell)
    task = asyncio.create_task(
        fetch_to_file(
            fetcher, f"{server.base}/stall", tmp_path / "c", limits(20 * MB), policy=LOOPBACK
        )
    )
    await asyncio.wait_for(wrote_to_disk.wait(), 10)
    assert [Path(name).suffix for name in leftovers(tmp_path)] == [".part"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []


# --- redirects ------------------------------------------------------------------------------


async def test_follows_up_to_three_redirects(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    fetched = await fetch_to_file(
        fetcher, f"{server.base}/redirect/2", tmp_path / "c", limits(), policy=LOOPBACK
    )
    assert fetched.sha256 == hashlib.sha256(BODY).hexdigest()


async def test_refuses_a_fourth_redirect(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/redirect/3", tmp_path / "c", limits(), policy=LOOPBACK
        )
    )
    assert error.code == "url_too_many_redirects"
    assert error.reason.startswith("Too many redirects")
    assert leftovers(tmp_path) == []


async def test_redirect_hop_is_rechecked_for_scheme(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    url = f"{server.base}/redirect-to?target=ftp://127.0.0.1/clip.mp4"
    error = await refused(
        fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy=LOOPBACK)
    )
    assert (error.code, error.reason) == ("url_insecure", "Links must use https://")


async def test_redirect_hop_is_rechecked_for_private_addresses(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    # Only our test server's address is exempt; the redirect target (another loopback
    # address, standing in for an internal service) must be refused before connecting.
    policy = UrlPolicy(allow_http=True, allowed_networks=(IPv4Network("127.0.0.1/32"),))
    await fetch_to_file(
        fetcher, f"{server.base}/file", tmp_path / "ok", limits(), policy=policy
    )
    url = f"{server.base}/redirect-to?target=http://127.0.0.2:{server.port}/file"
    error = await refused(fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy=policy))
    assert (error.code, error.reason) == (
        "url_private",
        "That link points to a private network address",
    )


# --- URL policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/clip.mp4", "url_insecure"),
        ("https://localhost/clip.mp4", "url_private"),  # a name resolving to 127.0.0.1
        ("https://127.0.0.1/clip.mp4", "url_private"),
        ("https://[::1]/clip.mp4", "url_private"),
        ("https://169.254.169.254/latest/meta-data/", "url_private"),
        ("https://10.0.0.8/clip.mp4", "url_private"),
        ("https://[::ffff:192.168.0.1]/clip.mp4", "url_private"),
    ],
)
async def test_strict_policy_refuses_before_connecting(
    fetcher: Fetcher, tmp_path: Path, url: str, code: str
) -> None:
    error = await refused(
        fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy=UrlPolicy())
    )
    assert error.code == code
    assert leftovers(tmp_path) == []


async def test_http_allowed_but_private_still_refused(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    url = f"http://localhost:{server.port}/file"
    error = await refused(
        fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy=UrlPolicy(allow_http=True))
    )
    assert error.code == "url_private"


def with_dns(fetcher: Fetcher, answers: dict[str, list[str]]) -> Fetcher:
    return dataclasses.replace(fetcher, resolver=FakeResolver(answers, fetcher.resolver))


async def test_one_private_answer_among_public_ones_is_refused(
    fetcher: Fetcher, tmp_path: Path
) -> None:
    fetcher = with_dns(fetcher, {"cdn.example": ["93.184.216.34", "127.0.0.1"]})
    error = await refused(
        fetch_to_file(
            fetcher, "https://cdn.example/a.mp4", tmp_path / "c", limits(), policy=UrlPolicy()
        )
    )
    assert error.code == "url_private"


async def test_public_answers_pass_the_policy(fetcher: Fetcher) -> None:
    from yarl import URL

    fetcher = with_dns(fetcher, {"cdn.example": ["93.184.216.34", "2606:2800::1"]})
    assert await UrlPolicy().resolve(URL("https://cdn.example/a.mp4"), fetcher.resolver) == [
        "93.184.216.34",
        "2606:2800::1",
    ]


async def test_unknown_host(
    fetcher: Fetcher, tmp_path: Path
) -> None:
    fetcher = with_dns(fetcher, {"nowhere.example": []})
    error = await refused(
        fetch_to_file(
            fetcher,
            "https://nowhere.example/a.mp4",
            tmp_path / "c",
            limits(),
            policy=UrlPolicy(),
        )
    )
    assert (error.code, error.reason) == (
        "url_unresolvable",
        "Could not find the server for that link",
    )


async def test_connection_is_pinned_to_the_checked_address(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    # The name's first address refuses connections; the second is our server. The request
    # still names the host (Host header), while the socket goes to a checked address.
    fetcher = with_dns(fetcher, {"media.test": ["127.0.0.2", "127.0.0.1"]})
    fetched = await fetch_to_file(
        fetcher,
        f"http://media.test:{server.port}/whoami",
        tmp_path / "w",
        limits(),
        policy=LOOPBACK,
    )
    assert fetched.path.read_text() == f"media.test:{server.port}"


async def test_redirect_keeps_the_host_name_for_relative_locations(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    url = f"http://localhost:{server.port}/redirect-to?target=/whoami"
    fetched = await fetch_to_file(fetcher, url, tmp_path / "w", limits(), policy=LOOPBACK)
    assert fetched.path.read_text() == f"localhost:{server.port}"


# --- hostile servers -------------------------------------------------------------------------


async def test_a_gzip_bomb_is_refused_unread(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    # We ask for identity; a compressed answer could inflate a thousandfold in one read.
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/gzip-bomb", tmp_path / "c", limits(MB), LOOPBACK,
            names=FileNames.clip(),
        )
    )
    assert (error.code, error.reason) == (
        "download_encoded",
        "Could not download the clip: the server sent it compressed",
    )
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("bounds", "code", "reason"),
    [
        # One byte at a time, each well inside the read timeout: the total bound stops it.
        ({"read_timeout": 30, "total_timeout": 0.3}, "download_timeout",
         "Downloading the file took too long; try again or use a smaller file"),
        # 50 bytes a second against a floor of 1 kB/s: refused when the grace ends, long
        # before the total bound (a member's drip would otherwise hold an intake slot).
        ({"total_timeout": 60, "min_rate": 1000, "slow_grace": 0.2}, "download_too_slow",
         "Could not download the file: the server sends it too slowly (less than 1 kB a "
         "second). Attach the file instead, or use a faster host"),
    ],
    ids=["total-timeout", "rate-floor"],
)
async def test_a_slow_drip_is_cut_off(
    server: Server, fetcher: Fetcher, tmp_path: Path, bounds: dict[str, Any], code: str,
    reason: str,
) -> None:
    error = await refused(
        fetch_to_file(
            fetcher, f"{server.base}/drip", tmp_path / "c", limits(MB, **bounds), LOOPBACK
        )
    )
    assert (error.code, error.reason) == (code, reason)
    assert leftovers(tmp_path) == []


async def test_a_download_above_the_rate_floor_is_untouched(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    dest = tmp_path / "clip"
    fetched = await fetch_to_file(
        fetcher, f"{server.base}/file", dest, limits(min_rate=1000, slow_grace=0.2), LOOPBACK
    )
    assert dest.read_bytes() == BODY and fetched.size == len(BODY)


@pytest.mark.parametrize("start", ["/loop/a", "/loop/self"])
async def test_a_redirect_loop_is_refused_as_such(
    server: Server, fetcher: Fetcher, tmp_path: Path, start: str
) -> None:
    url = f"{server.base}{start}"
    error = await refused(fetch_to_file(fetcher, url, tmp_path / "c", limits(), LOOPBACK))
    assert (error.code, error.reason) == (
        "url_redirect_loop",
        "That link redirects in a loop; link straight to the file",
    )
    assert leftovers(tmp_path) == []


def attachments_from(server: Server) -> UrlPolicy:
    """The attachment policy of a bot pointed at a Discord-compatible endpoint on `server`."""
    policies = FetchPolicies.build(discord_api_base=f"{server.base}/api/v10", insecure=False)
    return policies.attachments


async def test_attachments_come_only_from_the_discord_endpoint_host(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    policy = attachments_from(server)
    fetched = await fetch_to_file(fetcher, f"{server.base}/file", tmp_path / "ok", limits(), policy)
    assert fetched.size == len(BODY)
    for target in (
        f"http://127.0.0.2:{server.port}/file",  # another (private) address
        f"http://localhost:{server.port}/file",  # the same machine under another name
        f"http://127.0.0.1:{server.port + 1}/file",  # another port
        "https://example.com/clip.mp4",  # the public internet
    ):
        url = f"{server.base}/redirect-to?target={target}"
        error = await refused(fetch_to_file(fetcher, url, tmp_path / "c", limits(), policy))
        assert (error.code, error.reason) == (
            "url_host_not_allowed",
            "That file is not on a server the bot downloads from",
        ), target
    assert leftovers(tmp_path) == ["ok"]


async def test_strict_policies_refuse_loopback_attachments_and_results(
    server: Server, fetcher: Fetcher, tmp_path: Path
) -> None:
    strict = FetchPolicies.build(discord_api_base=None, insecure=False)
    attachment = await refused(
        fetch_to_file(fetcher, f"{server.base}/file", tmp_path / "c", limits(), strict.attachments)
    )
    result = await refused(
        fetch_to_file(fetcher, f"{server.base}/file", tmp_path / "c", limits(), strict.results)
    )
    assert (attachment.code, result.code) == ("url_insecure", "url_insecure")
    spoofed = await refused(
        fetch_to_file(
            fetcher, "https://cdn.discordapp.com.evil.example/a.mp4", tmp_path / "c", limits(),
            strict.attachments,
        )
    )
    assert spoofed.code == "url_host_not_allowed"
