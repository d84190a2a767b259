"""The simulator's provider clock: real elapsed time × time_scale, adjustable while running.

Task lifecycles, result-link expiry, record retention and callback retry delays are all
measured on this clock, so one knob (`time_scale`, or `advance()` with a frozen clock)
makes a 5-minute provider job take milliseconds without changing any other behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class Signal:
    """A broadcast "something changed" that any number of waiters can re-check on.

    The event is swapped for a fresh one on every notify, so a waiter that captured the
    old one wakes exactly once per change and never misses one.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        fired, self._event = self._event, asyncio.Event()
        fired.set()

    async def wait(self, limit_s: float | None = None) -> None:
        """Wait for the next notify, or `limit_s` real seconds, whichever comes first."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), limit_s)

    async def wait_for(self, predicate: Callable[[], bool], limit_s: float) -> None:
        """Return once `predicate()` holds; TimeoutError after `limit_s` real seconds."""
        async with asyncio.timeout(limit_s):
            while not predicate():
                await self._event.wait()


class SimClock:
    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._scale = float(time_scale)
        self._base_real = time.monotonic()
        self._base_provider = 0.0
        self.changed = Signal()  # fired on time_scale changes and jumps

    def now(self) -> float:
        """Provider seconds since the simulator was created."""
        return self._base_provider + (time.monotonic() - self._base_real) * self._scale

    @property
    def time_scale(self) -> float:
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value < 0:
            raise ValueError("time_scale must be >= 0")
        self._rebase()
        self._scale = float(value)
        self.changed.notify()

    def advance(self, seconds: float) -> None:
        """Jump provider time forward (useful with time_scale=0, a frozen clock)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._rebase()
        self._base_provider += seconds
        self.changed.notify()

    def _rebase(self) -> None:
        real = time.monotonic()
        self._base_provider += (real - self._base_real) * self._scale
        self._base_real = real

    async def sleep_until(self, provider_time: float) -> None:
        """Return once the provider clock reaches `provider_time`."""
        while (remaining := provider_time - self.now()) > 0:
            # Re-plan on every clock change; a frozen clock waits for advance().
            await self.changed.wait(None if self._scale == 0 else remaining / self._scale)

    async def sleep(self, provider_seconds: float) -> None:
        await self.sleep_until(self.now() + provider_seconds)
