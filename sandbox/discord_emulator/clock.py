"""Time sources and Discord snowflake ids.

The emulator keeps two notions of time:

* :class:`Clock` drives Discord's *rules* (the 3 s acknowledgement window, the 15 min
  interaction token lifetime, message timestamps). Tests can inject their own time source
  or call :meth:`Clock.advance` so they never have to wait for real.
* Latency measurements (acknowledgement latency) and rate-limit windows always use the real
  ``time.monotonic()``: discord.py sleeps in real time, so the limits it sees must be real.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

DISCORD_EPOCH_MS = 1_420_070_400_000


class Clock:
    """Monotonic seconds for deadlines plus wall time for timestamps, both advanceable."""

    def __init__(self, source: Callable[[], float] | None = None) -> None:
        self._source: Callable[[], float] = source or time.monotonic
        self._offset = 0.0

    def now(self) -> float:
        """Seconds on the rule clock (monotonic source + advanced offset)."""
        return self._source() + self._offset

    def wall(self) -> float:
        """UNIX time in seconds, shifted by the advanced offset."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset

    def iso(self) -> str:
        """An ISO-8601 timestamp like Discord's (``2024-01-01T00:00:00.000000+00:00``)."""
        return dt.datetime.fromtimestamp(self.wall(), dt.UTC).isoformat()


class SnowflakeGenerator:
    """Timestamp-based ids: ``(ms since 2015-01-01) << 22 | worker << 17 | process << 12 | n``."""

    def __init__(self, clock: Clock, worker: int = 1, process: int = 0) -> None:
        self._clock = clock
        self._worker = worker & 0x1F
        self._process = process & 0x1F
        self._last_ms = 0
        self._increment = 0

    def next(self) -> int:
        ms = int(self._clock.wall() * 1000) - DISCORD_EPOCH_MS
        if ms <= self._last_ms:
            ms = self._last_ms
            self._increment += 1
            if self._increment > 0xFFF:
                ms += 1
                self._increment = 0
        else:
            self._increment = 0
        self._last_ms = ms
        return (ms << 22) | (self._worker << 17) | (self._process << 12) | self._increment


def snowflake_time(snowflake: int) -> float:
    """UNIX time (seconds) encoded in a snowflake."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000
