"""The cap on intakes (downloads and checks) running at once, across all members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.jobs.errors import EditRefused
from bot.jobs.messages import INTAKES_BUSY


class IntakeSlots:
    """At most `capacity` intakes at once in this process.

    Process-local on purpose: it bounds this process's own sockets, memory and probe
    workers. A second bot process would have its own; the per-member limits that must hold
    across processes live in the database (`QuotaRepository.admit`).
    """

    def __init__(self, capacity: int) -> None:
        self._free = asyncio.Semaphore(capacity)

    @asynccontextmanager
    async def taken(self, *, wait: bool) -> AsyncIterator[None]:
        """Hold a slot for the block.

        A new edit (`wait=False`) is refused at once when every slot is taken: it is not
        queued without bound. A resumed job (`wait=True`) was admitted already, so it
        waits for its turn instead.
        """
        if not wait and self._free.locked():
            raise EditRefused("intakes_busy", INTAKES_BUSY)
        async with self._free:
            yield
