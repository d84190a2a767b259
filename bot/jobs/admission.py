"""The cap on intakes (downloads and checks) running at once, across all members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.jobs.errors import EditRefused
from bot.jobs.messages import INTAKES_BUSY


class IntakeSlots:
    """At most `capacity` intakes at once in this process, and at most `queue` new edits
    waiting for one.

    A burst of members (a server event, a popular prompt) waits a little in a short line
    (their command already shows "thinking"), instead of being turned away; only beyond
    the line is a new edit refused, so waiting stays bounded in memory and in time.

    Process-local on purpose: it bounds this process's own sockets, memory and probe
    workers. A second bot process would have its own; the per-member limits that must hold
    across processes live in the database (`QuotaRepository.admit`).
    """

    def __init__(self, capacity: int, queue: int) -> None:
        self._free = asyncio.Semaphore(capacity)
        self._queue = queue
        self._waiting = 0
        self._line_changed = asyncio.Condition()

    async def until_waiting(self, count: int) -> None:
        """Return once `count` edits wait in line (what a test or a probe waits for)."""
        async with self._line_changed:
            await self._line_changed.wait_for(lambda: self._waiting >= count)

    async def _line_moved(self, step: int) -> None:
        async with self._line_changed:
            self._waiting += step
            self._line_changed.notify_all()

    @asynccontextmanager
    async def taken(self, *, wait: bool) -> AsyncIterator[None]:
        """Hold a slot for the block.

        A new edit (`wait=False`) joins the line when every slot is taken, and is refused
        at once when the line is full. A resumed job (`wait=True`) was admitted already,
        so it always waits for its turn.
        """
        if not wait and self._free.locked() and self._waiting >= self._queue:
            raise EditRefused("intakes_busy", INTAKES_BUSY)
        await self._line_moved(+1)
        try:
            await self._free.acquire()
        finally:
            await self._line_moved(-1)
        try:
            yield
        finally:
            self._free.release()
