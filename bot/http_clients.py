"""The bot's two HTTP connection pools, and the DNS resolver both use.

Provider calls (the EvoLink API, and downloading its results) and member downloads never
share a pool: a hundred slow member links would otherwise hold every connection while
provider polls wait. Member downloads are capped in total and per host, so one member's
slow server cannot take them all either. Results share the provider's pool: at most the
tracker's concurrency of them run at once, and members cannot make them slow.

Names are resolved by aiodns (``aiohttp.AsyncResolver``), on the event loop itself: the
default thread-pool resolver would queue lookups behind file work and other blocking jobs.
The URL policy's own lookups use the same resolver (:class:`~bot.media.fetch.Fetcher`).
With aiodns installed, aiohttp makes it the default resolver of every session, so sessions
built elsewhere (discord.py's, the preflight's) resolve off the thread pool as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bot.media.fetch import Fetcher
from bot.media.filework import FileWork


@dataclass(frozen=True)
class HttpClients:
    provider: Fetcher
    downloads: Fetcher

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, *, download_connections: int, download_connections_per_host: int, files: FileWork
    ) -> AsyncIterator[HttpClients]:
        resolver = aiohttp.AsyncResolver()
        try:
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as api,
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(
                        limit=download_connections,
                        limit_per_host=download_connections_per_host,
                        resolver=resolver,
                    )
                ) as downloads,
            ):
                yield cls(
                    provider=Fetcher(api, resolver, files),
                    downloads=Fetcher(downloads, resolver, files),
                )
        finally:
            await resolver.close()
