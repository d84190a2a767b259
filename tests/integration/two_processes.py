"""Two bot "processes" in one test: each a full `Services` with its own engine and
connections, as `python -m bot run` with `SHARD_COUNT=2` and `SHARD_IDS=0` or `1` builds it,
on one PostgreSQL database and one S3 bucket (tests/integration/conftest.py: `second`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.evolink import RateLimiter
from bot.jobs.config import ScheduleConfig
from bot.services import Services
from tests.integration.engine_harness import FAST_SCHEDULE, Harness
from tests.s3_endpoint import S3Bucket

SHARDS = 2


class Clock:
    """The bot's clock, which a test moves forward (time a lease would take to end), or
    holds still (no token of a rate limit comes back until the test says so)."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.offset = 0.0
        self._frozen_at = time.time() if frozen else None

    def __call__(self) -> float:
        return (self._frozen_at or time.time()) + self.offset


@asynccontextmanager
async def running(
    harness: Harness, shard: int, url: str, bucket: S3Bucket,
    schedule: ScheduleConfig = FAST_SCHEDULE, limiter: RateLimiter | None = None,
    **settings: str,
) -> AsyncIterator[Services]:
    """`harness` runs as the process of shard `shard` of SHARDS, until the block ends."""
    services = await harness.start(
        limiter, schedule=schedule, DATABASE_URL=url, SHARD_COUNT=str(SHARDS),
        SHARD_IDS=str(shard), PUBLIC_BASE_URL="", **bucket.settings(), **settings,
    )
    try:
        yield services
    finally:
        await harness.stop()
