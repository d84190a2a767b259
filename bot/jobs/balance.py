"""The provider account's credits: read at start, after each settle and every few minutes.

EvoLink's `GET /v1/credits` (EVOLINK_API.md §3) reports the balance; credits it holds for
running tasks are not shown there but still count, so what the bot may still spend is the
balance minus the credits of its own tasks in flight. A new edit that balance cannot cover is
refused before anything is fetched or charged, instead of meeting a 402 from the create call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from bot.evolink import EvolinkClient, EvolinkError
from bot.evolink.spec import ModelSpec
from storage.balance import BalanceHistory

log = logging.getLogger(__name__)

MIN_GAP_S = 30.0
DAY_S = 86400.0
# How many days back `limits show` compares the balance: a day and a week.
TREND_DAYS = (1, 7)


class BalanceReading(BaseModel):
    """One answer of `GET /v1/credits`; `remaining` is None for an account without a cap."""

    remaining: float | None
    at: float

    def edits_left(self, spec: ModelSpec, in_flight: float) -> int | None:
        """How many edits of the longest billed clip the balance still pays for."""
        if self.remaining is None:
            return None
        longest = spec.max_seconds * spec.credits_per_second
        return max(int((self.remaining - in_flight) // longest), 0)


class BalanceChange(BaseModel):
    """How the balance moved over the `days` before the last reading: negative when spent
    (a top-up shows as a rise); None when no reading is that old yet."""

    days: int
    change: float | None


class BalanceFigures(BaseModel):
    """The provider account as the operator pays for it (shared by every server)."""

    remaining: float | None  # None: the account has no cap
    edits_left: int | None  # at the longest billed clip, after the edits in flight
    checked_at: float
    trend: list[BalanceChange] = []  # one per TREND_DAYS; empty without a cap


class ProviderBalance:
    def __init__(
        self,
        client: EvolinkClient,
        spec: ModelSpec,
        clock: Callable[[], float],
        *,
        in_flight: Callable[[], Awaitable[float]],
        low_edits: int,
        on_low: Callable[[BalanceReading, int], Awaitable[None]],
        every_s: float,
        history: BalanceHistory | None = None,
    ) -> None:
        self._client = client
        self._history = history
        self._spec = spec
        self._clock = clock
        self._in_flight = in_flight
        self._low_edits = low_edits
        self._on_low = on_low
        self._every_s = every_s
        self.reading: BalanceReading | None = None
        self._warned = False  # one alert per fall below the threshold, not one per check
        self._soon = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> BalanceReading | None:
        """Read the balance now; a failed read keeps the last one (and is logged)."""
        try:
            credits = await self._client.get_credits()
        except EvolinkError as error:
            log.warning("provider balance unavailable error=%r", error)
            return self.reading
        self.reading = BalanceReading(remaining=credits.spendable_credits, at=self._clock())
        if self._history is not None:
            await self._history.record(at=self.reading.at, remaining=self.reading.remaining)
        await self._check_low(self.reading)
        return self.reading

    async def trend(self, reading: BalanceReading) -> list[BalanceChange]:
        """How `reading`'s balance compares with the readings a day and a week before it
        (every process's readings count: they read the same account)."""
        if self._history is None or reading.remaining is None:
            return []
        before = await self._history.remaining_at([reading.at - d * DAY_S for d in TREND_DAYS])
        return [
            BalanceChange(days=days, change=None if then is None else reading.remaining - then)
            for days, then in zip(TREND_DAYS, before, strict=True)
        ]

    async def covers(self, credits: float) -> bool:
        """Whether the last known balance pays for `credits` more; unknown counts as yes
        (the create call's own 402 is then the safety net)."""
        reading = self.reading
        if reading is None or reading.remaining is None:
            return True
        return reading.remaining - await self._in_flight() >= credits

    def refresh_soon(self) -> None:
        """A task was just billed: read the balance again (coalesced with other requests)."""
        self._soon.set()

    async def start(self, first_read_within_s: float = 5.0) -> None:
        """Read the balance before the first edit is accepted, but never hold up a start on
        a provider that does not answer (the balance is then unknown until the next read)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(first_read_within_s):
                await self.refresh()
        self._task = asyncio.create_task(self._run(), name="provider-balance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        """Every few minutes, or soon after a task was billed (the caller read it first).

        A burst of billed edits costs one read, and reads after billing come at most one per
        `MIN_GAP_S`: the balance is a warning light, not worth a provider call per edit.
        """
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every_s):
                    await self._soon.wait()
            await asyncio.sleep(max(0.0, last + min(MIN_GAP_S, self._every_s) - loop.time()))
            self._soon.clear()
            last = loop.time()
            await self.refresh()

    async def _check_low(self, reading: BalanceReading) -> None:
        edits = reading.edits_left(self._spec, await self._in_flight())
        if edits is None or edits >= self._low_edits:
            self._warned = False
            return
        if not self._warned:
            self._warned = True
            log.error("provider balance low remaining=%s edits_left=%d", reading.remaining, edits)
            await self._on_low(reading, edits)
