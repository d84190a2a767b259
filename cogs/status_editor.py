"""Progress edits of status messages, coalesced per channel."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

import discord

from storage.models import Job

log = logging.getLogger(__name__)


class StatusEditor:
    """Coalesces progress edits per channel, so a busy channel never floods Discord.

    A channel shares one message rate limit (5 per 5 s) between new status messages,
    results and edits. Edits in one channel therefore go one at a time, each showing a job's
    latest state, jobs taking turns, and at least `interval` after the previous edit or
    status message posted there: new members' status messages come first, and however many
    edits are due, a new message waits behind at most one.
    """

    def __init__(self, interval: float, edit: Callable[[Job], Awaitable[object]]) -> None:
        self.interval = interval
        self._edit = edit
        self._pending: dict[int, dict[int, Job]] = {}  # channel id -> job id -> latest
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._in_flight: dict[int, asyncio.Event] = {}  # job id -> set when its edit ends
        self._last_write: dict[int, float] = {}  # channel id -> loop time of our last write

    def posted(self, channel_id: int) -> None:
        """We just posted a message in the channel: edits there wait an interval more."""
        now = asyncio.get_running_loop().time()
        if len(self._last_write) > 1000:  # forget quiet channels
            self._last_write = {
                c: t for c, t in self._last_write.items() if now - t < self.interval
            }
        self._last_write[channel_id] = now

    def submit(self, job: Job) -> None:
        # A job already waiting keeps its place in the line and gets the newer text.
        self._pending.setdefault(job.channel_id, {})[job.id] = job
        if job.channel_id not in self._workers:
            self._workers[job.channel_id] = asyncio.create_task(self._drain(job.channel_id))

    def forget(self, job_id: int) -> None:
        """Drop the job's queued edit (a final edit is coming)."""
        for queue in self._pending.values():
            queue.pop(job_id, None)

    async def settle(self, job_id: int) -> None:
        """Forget the job and wait for its edit in flight, so the final edit lands last."""
        self.forget(job_id)
        in_flight = self._in_flight.get(job_id)
        if in_flight is not None:
            await in_flight.wait()

    async def _drain(self, channel_id: int) -> None:
        try:
            loop = asyncio.get_running_loop()
            queue = self._pending.get(channel_id, {})
            while queue:
                # Rate limiting, not synchronisation: updates meanwhile are merged.
                wait = self._last_write.get(channel_id, -math.inf) + self.interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # the job may have been settled meanwhile
                job_id = next(iter(queue))
                job = queue.pop(job_id)
                done = self._in_flight[job_id] = asyncio.Event()
                try:
                    await self._edit(job)
                except discord.HTTPException as error:
                    log.warning("status edit failed job=%d status=%s", job_id, error.status)
                finally:
                    self._in_flight.pop(job_id, None)
                    done.set()
                    self._last_write[channel_id] = loop.time()
        finally:
            self._workers.pop(channel_id, None)
            if not self._pending.get(channel_id):
                self._pending.pop(channel_id, None)

    async def close(self) -> None:
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
