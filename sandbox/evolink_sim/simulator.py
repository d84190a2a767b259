"""EvolinkSimulator: the simulator's state, start/stop and its Python control API.

HTTP handling lives in routes.py (EvoLink's API) and control.py (`/_sim/`), per-task
background work in lifecycle.py. All state hangs off one instance, so several simulators
can run side by side in one process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from .app import build_app
from .callbacks import DEFAULT_RETRY_DELAYS
from .clock import Signal, SimClock
from .contract import MODELS, TASK_ERROR_MESSAGES, Envelope
from .injection import FaultInjection
from .ledger import CreditLedger, InsufficientCredits
from .lifecycle import TaskRunner
from .results import ResultStore
from .script import ResultOutage, ResultsMode
from .stats import simulator_stats
from .tasks import Outcome, SimTask, lookup_task, new_task_id
from .validation import CreateRequest
from .waiting import Waiters

log = logging.getLogger(__name__)


class EvolinkSimulator(FaultInjection, Waiters):
    """An EvoLink API peer on loopback; see README.md in this package for the behaviour."""

    def __init__(
        self,
        api_key: str = "sk-evo-test",
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        result_ttl_s: float = 86400.0,
        task_retention_s: float = 7 * 86400.0,
        allow_insecure_callbacks: bool = False,
        allow_private_urls: bool = False,
        error_envelope: Envelope = "current",
        credits: float = 100000.0,
        *,
        allow_unknown_fields: bool = False,
        callback_timeout_s: float = 10.0,
        callback_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        fetch_timeout_s: float = 30.0,
        work_dir: Path | None = None,
        echo_usage: bool = True,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.clock = SimClock(time_scale)
        self.result_ttl_s = result_ttl_s
        self.task_retention_s = task_retention_s
        self.allow_insecure_callbacks = allow_insecure_callbacks
        self.allow_private_urls = allow_private_urls
        self.allow_unknown_fields = allow_unknown_fields
        self.error_envelope: Envelope = error_envelope
        self.ledger = CreditLedger(credits)
        self.denied_models: set[str] = set()  # known models answered with 403
        self.callback_timeout_s = callback_timeout_s
        self.callback_retry_delays = tuple(callback_retry_delays)
        self.fetch_timeout_s = fetch_timeout_s
        self.echo_usage = echo_usage  # §2.1: usage "may or may not be echoed" on queries

        self.tasks: dict[str, SimTask] = {}
        self.create_attempts = 0
        self._init_injection()
        self.changed = Signal()  # any task made progress a waiter may care about
        self.stopping = asyncio.Event()
        self._work_dir_arg = work_dir
        self._work_dir: Path | None = None
        self.runner = TaskRunner(self)
        self._web_runner: web.AppRunner | None = None
        self._results: ResultStore | None = None

    # -- lifecycle of the simulator itself ---------------------------------------------

    async def start(self) -> None:
        self._work_dir = self._work_dir_arg or Path(tempfile.mkdtemp(prefix="evolink-sim-"))
        try:
            self._results = ResultStore(self._work_dir, self.clock)
            await self._results.prepare()
            self.runner.open()
            # handler_cancellation: a client that gives up on a hung create ends that handler.
            self._web_runner = web.AppRunner(
                build_app(self), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
            )
            await self._web_runner.setup()
            await web.TCPSite(self._web_runner, self.host, self.port).start()
        except BaseException:
            await self.stop()
            raise
        if self.port == 0:  # learn the port the OS picked
            self.port = int(self._web_runner.addresses[0][1])
        log.info("EvoLink simulator listening on %s", self.base_url)

    async def stop(self) -> None:
        self.stopping.set()  # releases hung creates
        try:
            await self.runner.close()
            if self._web_runner is not None:
                await self._web_runner.cleanup()
                self._web_runner = None
        finally:
            if self._work_dir is not None and self._work_dir_arg is None:
                shutil.rmtree(self._work_dir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def results(self) -> ResultStore:
        if self._results is None:
            raise RuntimeError("simulator not started")
        return self._results

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.clock.time_scale = value

    @property
    def credits(self) -> float:
        """Account balance as `GET /v1/credits` reports it; assign to top up or drain."""
        return self.ledger.remaining

    @credits.setter
    def credits(self, value: float) -> None:
        self.ledger.total = self.ledger.used + float(value)

    def advance(self, seconds: float) -> None:
        """Move provider time forward (pairs with time_scale=0 for step-by-step tests)."""
        self.clock.advance(seconds)

    # -- task control ------------------------------------------------------------------

    def _task(self, task_id: str) -> SimTask:
        return lookup_task(self.tasks, task_id)

    def request_counts(self, task_id: str) -> dict[str, int]:
        return dict(self._task(task_id).counts)

    def expire_result(self, task_id: str) -> None:
        task = self._task(task_id)
        if task.result_token is None:
            raise ValueError(f"task {task_id} has no result link")
        self.results.expire(task.result_token)

    def expire_task(self, task_id: str) -> None:
        """The task record is gone now: GET answers 404 from here on."""
        task = self._task(task_id)
        task.record_expires_at = min(task.record_expires_at, self.clock.now())

    def break_result(
        self,
        task_id: str,
        status: int | Literal["reset"] = 503,
        *,
        for_requests: int | None = None,
        for_seconds: float | None = None,
    ) -> None:
        """The task's result link answers `status` (or resets the connection) for the next
        `for_requests` downloads (default 1) or `for_seconds` provider seconds, then serves
        the file until it expires. Armed before completion, it starts when the link is
        published."""
        task = self._task(task_id)
        outage = ResultOutage(status=status, requests=for_requests, seconds=for_seconds)
        if task.result_token is not None:
            self.results.break_link(task.result_token, outage)
        elif task.finalized or task.results_mode != "normal":
            raise ValueError(f"task {task_id} has no result link and will get none")
        else:
            task.result_outage = outage

    def complete_now(self, task_id: str, results: ResultsMode | None = None) -> None:
        """Complete now (billed); `results` overrides the script's "normal"/"missing"/"empty"."""
        task = self._task(task_id)
        if results is not None and not task.finalized:
            task.results_mode = results
        self._force(task, "completed")

    def find_results(self, task_id: str) -> None:
        """A task that completed without results gets its result link now, as if the
        provider found the video later (an extension: the docs promise nothing about it).
        The link lives `result_ttl_s` from now. `ValueError` unless the task completed
        without results."""
        task = self._task(task_id)
        if not task.finalized or task.outcome != "completed" or task.results_mode == "normal":
            raise ValueError(f"task {task_id} did not complete without results")
        task.results_mode = "normal"
        self.runner.publish(task, self.clock.now())
        self.changed.notify()

    def fail_now(
        self, task_id: str, code: str = "service_error", message: str | None = None
    ) -> None:
        if code not in TASK_ERROR_MESSAGES:
            raise ValueError(f"unknown EvoLink task error code {code!r}")
        self._force(self._task(task_id), "failed", code, message)

    def _force(
        self, task: SimTask, outcome: Outcome, code: str | None = None, message: str | None = None
    ) -> None:
        if task.finalized:
            raise ValueError(f"task {task.id} is already {task.outcome}")
        if outcome == "completed" and not task.inputs_checked and task.script.check_inputs:
            task.completion_forced = True  # the lifecycle completes it once measured
            return
        task.decide(outcome, self.clock.now(), code, message)
        task.inputs_checked = True
        self.runner.finalize(task)

    # -- used by the HTTP layer --------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.api_key}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    def create_task(self, request: CreateRequest, body: dict[str, Any]) -> SimTask:
        """Register a task for a valid request (raises InsufficientCredits → 402)."""
        spec = MODELS[request.model]
        script = self._next_script()
        # Until the video is probed the length is unknown: hold the worst case (§7).
        duration = script.video_duration
        reserve = spec.credits_for(duration if duration is not None else spec.max_seconds)
        if not self.ledger.can_reserve(reserve):
            raise InsufficientCredits  # the scripted behaviour stays queued for the next task
        if self._scripts:
            self._scripts.popleft()
        self.ledger.reserve(reserve)
        now = self.clock.now()
        task_id = new_task_id()
        while task_id in self.tasks:
            task_id = new_task_id()
        task = SimTask(
            id=task_id,
            spec=spec,
            request=request,
            body=body,
            script=script,
            clock=self.clock,
            created=int(time.time()),
            created_at=now,
            record_expires_at=now + self.task_retention_s,
            video_duration_s=duration,
            credits_reserved=reserve,
            results_mode=script.results,
            result_outage=script.result_outage,
        )
        self.tasks[task_id] = task
        self.runner.start(task)
        return task

    # -- reporting ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and benchmarks (also `GET /_sim/stats`)."""
        return simulator_stats(self)
