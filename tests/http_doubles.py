"""The bot's HTTP pools as tests open them, and a DNS resolver with canned answers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from bot.http_clients import HttpClients
from bot.media.filework import FileWork


@asynccontextmanager
async def http_clients(connections: int = 8, per_host: int = 8) -> AsyncIterator[HttpClients]:
    """Both pools and the file-work threads, as ``Services.running()`` opens them."""
    with FileWork.running() as files:
        async with HttpClients.running(
            download_connections=connections, download_connections_per_host=per_host,
            files=files,
        ) as http:
            yield http


class FakeResolver(AbstractResolver):
    """Answers the names in ``answers`` (an empty list: the name does not exist); asks
    ``fallback`` for any other."""

    def __init__(self, answers: dict[str, list[str]], fallback: AbstractResolver) -> None:
        self.answers = answers
        self.fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.answers:
            return await self.fallback.resolve(host, port, family)
        if not self.answers[host]:
            raise OSError(None, "Domain name not found")  # what aiohttp's resolvers raise
        return [
            ResolveResult(
                hostname=host, host=address, port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        return None
