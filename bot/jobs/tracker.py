"""The one loop that drives submitted jobs to delivery: it runs each due job's next step
(`steps.py`: poll, archive, deliver) and tidies up.

It sleeps until the earliest `next_poll_at` / `next_delivery_at` in SQLite (or until a
callback or a new job wakes it), so its cost grows with work done, not with jobs waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from bot.jobs.adoption import Adoption
from bot.jobs.config import EngineConfig
from bot.jobs.deps import EngineDeps
from bot.jobs.engine import JobEngine
from bot.jobs.recovery import Recovery
from bot.jobs.steps import JobSteps
from storage.leases import Hint
from storage.models import JobState
from storage.transitions import StaleTransition

log = logging.getLogger(__name__)

IDLE_WAKE_S = 300.0  # re-read the schedule now and then even when nothing is due
# A lease is renewed this many times within its length, so one slow renewal is no loss.
RENEWALS_PER_LEASE = 3

# The PostgreSQL channel on which a process hands a callback's hint to the others.
HINT_CHANNEL = "kling_job_hints"
# Tells the process holding a job that a callback for it arrived elsewhere.
HintHolder = Callable[[int], Awaitable[None]]


class Tracker:
    def __init__(
        self,
        engine: JobEngine,
        deps: EngineDeps,
        config: EngineConfig,
        wake: asyncio.Event,
        tell_holder: HintHolder | None = None,
    ) -> None:
        self.engine = engine
        self.deps = deps
        self.adoption = Adoption(engine)
        self.recovery = Recovery(engine)
        self.config = config
        self._wake = wake
        self._tell_holder = tell_holder  # None: one process, every lease is ours
        self._busy: set[int] = set()
        self._hinted: set[int] = set()
        self._slots = asyncio.Semaphore(config.schedule.concurrency)
        self._actions: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._intake_task: asyncio.Task[None] | None = None
        self._next_housekeeping = 0.0
        self._next_due: float | None = None  # from the last pass; every change wakes us
        self.wakeups = 0
        # What each due job gets done (`steps.py`); this class decides when, at most once
        # at a time per job, and waits for it at shutdown.
        self.steps = JobSteps(
            engine, deps, config, wake=self.wake,
            spawn=lambda name, action: self._start(name, None, action),
        )

    # --- lifecycle ----------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def job_hint(self, job_id: int, task_id: str | None = None) -> bool:
        """A callback said this job changed: make it due now (duplicates are harmless).

        A task id it names for a job still waiting for one is verified and adopted instead
        (bot/jobs/adoption.py). False: that task could not be checked with the provider now,
        so the sender should try again.
        """
        if task_id is not None:
            adopted = await self.adoption.from_callback(job_id, task_id)
            if adopted is not None:
                return adopted
        if await self._make_due(job_id) is Hint.HELD and self._tell_holder is not None:
            await self._tell_holder(job_id)
        return True

    def hint_from_elsewhere(self, job_id: int) -> None:
        """Another process had a callback for a job held by some process, maybe this one."""

        async def hint() -> None:
            await self._make_due(job_id)  # held elsewhere: that process heard it too

        self._start(f"hint-{job_id}", None, hint)

    async def _make_due(self, job_id: int) -> Hint:
        if job_id in self._busy:
            self._hinted.add(job_id)  # the running poll may have missed it: poll once more
            return Hint.DUE
        outcome = await self.deps.jobs.make_due(job_id, now=self.deps.clock())
        if outcome is Hint.DUE:
            self.wake()
        return outcome

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="job-tracker")
        if self.config.shared_jobs:
            self._intake_task = asyncio.create_task(self._hold_intakes(), name="intake-leases")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop starting work; give running actions `grace_s` to finish, then cancel them.

        A delivery cut between posting and recording would be posted again after the
        restart, so actions get a chance to complete; whatever is cut is resumed later.
        """
        for loop in (self._loop_task, self._intake_task):
            if loop is not None:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
        running = list(self._actions)
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for action in list(self._actions):
            action.cancel()
        await asyncio.gather(*self._actions, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until no action is running (tests and graceful shutdown use it)."""
        while self._actions:
            await asyncio.gather(*list(self._actions), return_exceptions=True)

    # --- the loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                log.exception("tracker pass failed")
            delay = await self._seconds_until_next()
            # Not asyncio.wait_for: on 3.11 it swallows a cancel that arrives as the wake
            # event fires, and stop() would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self.wakeups += 1

    async def _seconds_until_next(self) -> float:
        candidates = [self._next_housekeeping]
        if self._next_due is not None:
            candidates.append(self._next_due)
        return min(max(0.0, min(candidates) - self.deps.clock()), IDLE_WAKE_S)

    async def run_due(self) -> None:
        """Start every action that is due now (each job at most once at a time).

        One database round trip: the due jobs are leased (their due time pushed out, so a
        crash mid-action retries later instead of never) and the next due time is read.
        At most as many polls (and deliveries) as there are free slots: a job leased to
        wait in this process's queue would be kept from the other processes, and its lease,
        renewed only once its step runs, could end while it waits. With no slot free there
        is nothing to ask: the next action to finish wakes the loop.
        """
        d, schedule = self.deps, self.config.schedule
        now = d.clock()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + schedule.housekeeping_every_s
            self._start("housekeeping", None, self._housekeeping)
        free = schedule.concurrency - len(self._busy)
        if free <= 0:
            self._next_due = None  # not a due time in the past: the loop would spin
            return
        due = await d.jobs.lease_due(
            now, until=now + schedule.lease_s, limit=free, skip=self._busy
        )
        self._next_due = due.next_due
        for job in due.polls:
            steps = self.steps
            handler = steps.poll if job.state is JobState.SUBMITTED else steps.fetch_result
            self._start(f"poll-{job.id}", job.id, partial(handler, job))
        for job in due.deliveries:
            self._start(f"deliver-{job.id}", job.id, partial(self.steps.deliver, job))

    async def hold_intakes_once(self) -> None:
        """Renew the leases on this process's jobs before the provider; take over (and carry
        on with) those of a process that let its leases end."""
        now = self.deps.clock()
        orphans = await self.deps.jobs.hold_intakes(
            now=now, until=now + self.config.schedule.lease_s
        )
        if orphans:
            await self.recovery.take_over(orphans)

    async def _hold_intakes(self) -> None:
        """Several processes: the lease on jobs before the provider is this process's
        heartbeat (one statement for all of them), renewed as often as a step's lease."""
        while True:
            try:
                await self.hold_intakes_once()
            except Exception:
                log.exception("renewing or taking over intake leases failed")
            await asyncio.sleep(self.config.schedule.lease_s / RENEWALS_PER_LEASE)

    async def _keep_lease(self, job_id: int) -> None:
        """Renew the lease on `job_id` while its step runs (a long download or post), so no
        other process takes the job over from a live one; stops when the step reschedules."""
        lease_s = self.config.schedule.lease_s
        while True:
            await asyncio.sleep(lease_s / RENEWALS_PER_LEASE)
            if not await self.deps.jobs.renew_lease(job_id, until=self.deps.clock() + lease_s):
                return

    def _start(
        self, name: str, job_id: int | None, action: Callable[[], Awaitable[None]]
    ) -> None:
        async def guarded() -> None:
            async with self._slots:
                renewing = None if job_id is None else asyncio.create_task(
                    self._keep_lease(job_id), name=f"lease-{job_id}"
                )
                try:
                    await action()
                except StaleTransition as stale:
                    log.info("skipped stale action %s: %s", name, stale)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("action failed %s", name)
                finally:
                    if renewing is not None:
                        renewing.cancel()
                        await asyncio.gather(renewing, return_exceptions=True)
                    if job_id is not None:
                        self._busy.discard(job_id)
                        if job_id in self._hinted:
                            self._hinted.discard(job_id)
                            await self.job_hint(job_id)
                        self.wake()

        if job_id is not None:
            self._busy.add(job_id)
        task = asyncio.create_task(guarded(), name=name)
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def _housekeeping(self) -> None:
        await self.deps.store.remove_expired()
        await self.adoption.settle_overdue()

