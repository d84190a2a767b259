"""Member downloads cannot starve provider calls, and neither file work nor DNS waits behind
the loop's default thread pool. Real aiohttp servers on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import aiohttp.resolver
import pytest
from aiohttp import web
from yarl import URL

from bot.http_clients import HttpClients
from bot.media.errors import MB
from bot.media.fetch import FetchLimits, fetch_to_file
from bot.media.urlpolicy import UrlPolicy
from tests.http_doubles import http_clients

LOOPBACK = UrlPolicy(allow_http=True, allow_private=True)
LIMITS = FetchLimits(max_bytes=MB)


@dataclass
class SlowHost:
    """Answers /slow only once released; counts who is waiting, and says when `expect` are."""

    expect: int
    base: str = ""
    waiting: int = 0
    all_waiting: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        async def slow(request: web.Request) -> web.Response:
            self.waiting += 1
            if self.waiting >= self.expect:
                self.all_waiting.set()
            await self.release.wait()
            return web.Response(body=b"late")

        async def fast(request: web.Request) -> web.Response:
            return web.Response(body=b"prompt")

        app = web.Application()
        app.router.add_get("/slow", slow)
        app.router.add_get("/fast", fast)
        return app


Serve = Callable[..., Awaitable[SlowHost]]  # (host, address="127.0.0.1") -> started host


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []
    hosts: list[SlowHost] = []

    async def start(host: SlowHost, address: str = "127.0.0.1") -> SlowHost:
        runner = web.AppRunner(host.app())
        await runner.setup()
        await web.TCPSite(runner, address, 0).start()
        runners.append(runner)
        hosts.append(host)
        host.base = f"http://{address}:{runner.addresses[0][1]}"
        return host

    yield start
    for host in hosts:
        host.release.set()
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    async with http_clients(connections=2, per_host=2) as clients:
        yield clients


async def test_provider_calls_go_through_while_member_downloads_fill_their_pool(
    serve: Serve, http: HttpClients, tmp_path: Path
) -> None:
    slow = await serve(SlowHost(expect=2))
    downloads = [
        asyncio.create_task(
            fetch_to_file(http.downloads, f"{slow.base}/slow", tmp_path / f"d{i}", LIMITS, LOOPBACK)
        )
        for i in range(3)
    ]
    await slow.all_waiting.wait()  # both member connections are taken
    async with http.provider.session.get(f"{slow.base}/fast") as response:
        assert await response.read() == b"prompt"
    assert slow.waiting == 2  # the third download is still queued for a connection
    slow.release.set()
    assert [f.size for f in await asyncio.gather(*downloads)] == [4, 4, 4]


async def test_one_slow_host_leaves_connections_for_others(
    serve: Serve, tmp_path: Path
) -> None:
    slow = await serve(SlowHost(expect=2))
    other = await serve(SlowHost(expect=1), "127.0.0.2")
    async with http_clients(connections=16, per_host=2) as http:
        stuck = [
            asyncio.create_task(
                fetch_to_file(
                    http.downloads, f"{slow.base}/slow", tmp_path / f"s{i}", LIMITS, LOOPBACK
                )
            )
            for i in range(2)
        ]
        await slow.all_waiting.wait()
        fetched = await fetch_to_file(
            http.downloads, f"{other.base}/fast", tmp_path / "o", LIMITS, LOOPBACK
        )
        assert fetched.path.read_bytes() == b"prompt"
        slow.release.set()
        await asyncio.gather(*stuck)


async def test_downloads_and_lookups_do_not_wait_for_the_default_thread_pool(
    serve: Serve, http: HttpClients, tmp_path: Path
) -> None:
    fast = await serve(SlowHost(expect=1))
    loop = asyncio.get_running_loop()
    blocked = ThreadPoolExecutor(2)
    loop.set_default_executor(blocked)
    unblock = threading.Event()
    hogs = [loop.run_in_executor(None, unblock.wait) for _ in range(2)]  # every thread taken
    try:
        fetched = await fetch_to_file(
            http.downloads, f"{fast.base}/fast", tmp_path / "clip", LIMITS, LOOPBACK
        )
        assert fetched.path.read_bytes() == b"prompt"
        # The URL policy's lookups use the pool's resolver (aiodns), not a pool thread.
        addresses = await LOOPBACK.resolve(
            URL(f"http://localhost:{URL(fast.base).port}/"), http.downloads.resolver
        )
        assert "127.0.0.1" in addresses
    finally:
        unblock.set()
        await asyncio.gather(*hogs)


def test_every_aiohttp_session_resolves_with_aiodns() -> None:
    # With aiodns installed (>= 3.2), aiohttp's default resolver is the asynchronous one, so
    # sessions we do not build (discord.py's, the preflight's) stay off the thread pool too.
    assert aiohttp.resolver.DefaultResolver is aiohttp.AsyncResolver
