"""EVOLINK_REQUESTS_PER_SECOND for the whole bot: one process keeps it with aiolimiter in
memory; several processes (SHARD_IDS) share one token bucket in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from bot.evolink import RateLimiter
from bot.settings import Settings
from storage.rate import RateBuckets

BUCKET = "evolink"


class SharedRateLimiter:
    """At most `per_second` calls a second across every process using `buckets`' database,
    in bursts of up to one second's worth, like `AsyncLimiter(per_second, 1.0)`."""

    def __init__(
        self, buckets: RateBuckets, per_second: float, clock: Callable[[], float]
    ) -> None:
        self._buckets = buckets
        self._per_second = per_second
        self._capacity = max(1.0, per_second)
        self._clock = clock

    async def acquire(self) -> None:
        while True:
            wait = await self._buckets.take(
                BUCKET, now=self._clock(), per_second=self._per_second, capacity=self._capacity
            )
            if not wait:
                return
            await asyncio.sleep(wait)  # the time one token takes to come back


def provider_limiter(
    settings: Settings, buckets: RateBuckets, clock: Callable[[], float]
) -> RateLimiter:
    per_second = settings.evolink_requests_per_second
    if settings.several_processes:
        return SharedRateLimiter(buckets, per_second, clock)
    return AsyncLimiter(per_second, 1.0)
