"""A DNS resolver with canned answers, for tests of the URL policy and pinned connections."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult


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
