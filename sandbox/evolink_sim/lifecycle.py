"""Background life of a task: input check, timeline, terminal side effects, callbacks.

Every task gets one asyncio task that fetches and checks its inputs, sleeps on the
provider clock until the scripted end, then finalizes. Finalizing is idempotent and may
also be triggered early by a client's GET (the clock says it is over) or by
complete_now/fail_now, so whoever gets there first applies billing and callbacks once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp

from .callbacks import deliver_callback, run_deliveries
from .media_check import InputChecker, InputVerdict
from .tasks import CallbackAttempt, SimTask

if TYPE_CHECKING:
    from .simulator import EvolinkSimulator

log = logging.getLogger(__name__)

_CALLBACK_COPIES = {"normal": 1, "drop": 0, "duplicate": 2}


class TaskRunner:
    def __init__(self, sim: EvolinkSimulator) -> None:
        self._sim = sim
        self._background: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        # One client session for input fetches and callbacks; trust_env stays off so no
        # proxy setting can route simulator traffic off this machine.
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for job in list(self._background):
            job.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def start(self, task: SimTask) -> None:
        self._spawn(self._run_task(task))

    def finalize(self, task: SimTask) -> None:
        """Apply a terminal state once: bill or refund, publish the result, send callbacks."""
        if task.finalized or task.outcome is None or task.terminal_at is None:
            return
        task.finalized = True
        if task.outcome == "completed":
            if task.results_mode == "normal":
                self.publish(task, task.terminal_at)
            # Billed whether or not results came with it: §5 reports completion only
            # after billing is confirmed.
            self._sim.ledger.settle(task.credits_reserved, billed=task.credits_reserved)
        else:
            self._sim.ledger.release(task.credits_reserved)
        copies = _CALLBACK_COPIES[task.script.callback] if task.callback_url else 0
        self._spawn(self._deliver(task, copies))
        self._sim.changed.notify()

    def publish(self, task: SimTask, completed_at: float) -> None:
        results = self._sim.results
        name = results.publish(task.script.result_path, completed_at + self._sim.result_ttl_s)
        task.result_token = name
        task.result_url = f"{self._sim.base_url}/files/{name}"
        if task.result_outage is not None:
            results.break_link(name, task.result_outage, start=completed_at)

    def observe(self, task: SimTask) -> None:
        """A client looked: if the clock says the task is over, make it so right now."""
        if task.is_due(self._sim.clock.now()):
            self.finalize(task)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _run_task(self, task: SimTask) -> None:
        try:
            verdict = await self._check_inputs(task)
            if task.outcome is None:  # not forced by complete_now/fail_now meanwhile
                self._apply_verdict(task, verdict)
                if task.completion_forced and verdict.ok:
                    task.decide("completed", self._sim.clock.now())
            self._sim.changed.notify()
            assert task.terminal_at is not None
            await self._sim.clock.sleep_until(task.terminal_at)
            self.finalize(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s lifecycle crashed", task.id)

    async def _check_inputs(self, task: SimTask) -> InputVerdict:
        if not task.script.check_inputs:
            return InputVerdict(ok=True, duration_s=task.script.video_duration)
        assert self._session is not None
        checker = InputChecker(
            self._session,
            allow_private_urls=self._sim.allow_private_urls,
            fetch_timeout_s=self._sim.fetch_timeout_s,
        )
        return await checker.check(
            task.request, task.spec, refuse_out_of_range=task.script.refuse_out_of_range
        )

    def _apply_verdict(self, task: SimTask, verdict: InputVerdict) -> None:
        now = self._sim.clock.now()
        task.inputs_checked = True
        if not verdict.ok:
            task.decide("failed", now, verdict.code, verdict.message)
            return
        if task.script.video_duration is None and verdict.duration_s is not None:
            task.video_duration_s = verdict.duration_s
            price = task.spec.credits_for(verdict.duration_s)
            self._sim.ledger.adjust(task.credits_reserved, price)
            task.credits_reserved = price
        task.decide(task.script.outcome, max(now, task.created_at + task.script.processing_s))

    async def _deliver(self, task: SimTask, copies: int) -> None:
        try:
            if copies and self._session is not None and task.callback_url:
                payload = task.query_json(usage=self._sim.echo_usage)
                send = partial(
                    deliver_callback,
                    self._session,
                    task.callback_url,
                    payload,
                    timeout_s=self._sim.callback_timeout_s,
                    retry_delays=self._sim.callback_retry_delays,
                    sleep=self._sim.clock.sleep,
                    now=self._sim.clock.now,
                    record=partial(self._record_callback, task),
                )
                await run_deliveries(copies, lambda delivery: send(delivery=delivery))
        finally:
            task.settled.set()
            self._sim.changed.notify()

    def _record_callback(self, task: SimTask, attempt: CallbackAttempt) -> None:
        task.callback_log.append(attempt)
        task.counts["callback"] += 1
        self._sim.changed.notify()
