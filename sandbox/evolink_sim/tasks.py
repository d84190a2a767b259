"""One simulated task: its timeline on the provider clock and its JSON renderings (§1.2, §2)."""

from __future__ import annotations

import asyncio
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from .clock import SimClock
from .contract import (
    TASK_ERROR_MESSAGES,
    TASK_ID_PREFIX,
    ModelSpec,
    TaskStatus,
    whole_seconds_up,
)
from .script import ResultOutage, ResultsMode, TaskScript
from .validation import CreateRequest

Outcome = Literal["completed", "failed"]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_MAX_PENDING_S = 5.0  # provider seconds a task sits in "pending" before "processing"


def new_task_id(now_unix: float | None = None) -> str:
    """`task-unified-<unix_seconds>-<8 [a-z0-9]>`, the pattern of every documented example."""
    stamp = int(time.time() if now_unix is None else now_unix)
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"{TASK_ID_PREFIX}{stamp}-{suffix}"


def lookup_task(tasks: dict[str, SimTask], task_id: str) -> SimTask:
    """The task, or a KeyError that names it (the control API turns it into a 404)."""
    try:
        return tasks[task_id]
    except KeyError:
        raise KeyError(f"unknown task {task_id}") from None


@dataclass(frozen=True)
class CallbackAttempt:
    """One HTTP attempt to deliver a callback (`status` is None on timeout/connection error)."""

    delivery: int  # 1, or 2 for the duplicate of a "duplicate"-mode task
    attempt: int  # 1..4 within that delivery
    status: int | None
    error: str | None
    at: float  # provider clock

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class SimTask:
    id: str
    spec: ModelSpec
    request: CreateRequest
    body: dict[str, Any]  # the raw JSON the client sent
    script: TaskScript
    clock: SimClock
    created: int  # unix seconds (wall clock), as in the API
    created_at: float  # provider clock
    record_expires_at: float
    video_duration_s: float | None  # known length: scripted, else probed (None until then)
    credits_reserved: float
    counts: dict[str, int] = field(default_factory=lambda: {"create": 1, "get": 0, "callback": 0})
    callback_log: list[CallbackAttempt] = field(default_factory=list)
    inputs_checked: bool = False
    # complete_now before the inputs were measured: completes as soon as they are, at the
    # measured price (a provider bills the clip it measured, not its worst-case hold).
    completion_forced: bool = False
    outcome: Outcome | None = None  # decided once the inputs are checked (or forced)
    terminal_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    finalized: bool = False  # terminal state reached and its side effects applied
    result_url: str | None = None
    result_token: str | None = None
    results_mode: ResultsMode = "normal"  # from the script, or complete_now's override
    result_outage: ResultOutage | None = None  # applied to the link when it is published
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # terminal + callbacks done

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def callback_url(self) -> str | None:
        return self.request.callback_url

    @property
    def pending_s(self) -> float:
        return min(_MAX_PENDING_S, 0.1 * self.script.processing_s)

    @property
    def status(self) -> TaskStatus:
        return self.status_at(self.clock.now())

    def status_at(self, now: float) -> TaskStatus:
        if self.outcome is not None and (
            self.finalized or (self.terminal_at is not None and now >= self.terminal_at)
        ):
            return self.outcome
        if not self.inputs_checked or now - self.created_at < self.pending_s:
            return "pending"
        return "processing"

    def is_due(self, now: float) -> bool:
        """Terminal by the clock, but side effects (billing, callbacks) not yet applied."""
        return not self.finalized and self.status_at(now) in ("completed", "failed")

    def expired(self, now: float) -> bool:
        return now >= self.record_expires_at

    def decide(
        self, outcome: Outcome, at: float, code: str | None = None, message: str | None = None
    ) -> None:
        """Fix the terminal state and when it is reached; the script fills in what is missing."""
        self.outcome = outcome
        self.terminal_at = at
        if outcome == "failed":
            self.error_code = code or self.script.error_code
            if message is None:
                message = (
                    self.script.failure_message()
                    if code is None
                    else TASK_ERROR_MESSAGES.get(code, "Task failed.")
                )
            self.error_message = message

    def progress_at(self, now: float) -> int:
        status = self.status_at(now)
        if status == "completed":
            return 100
        if status != "processing":
            return 0
        span = max(self.script.processing_s - self.pending_s, 1e-9)
        return max(1, min(99, math.floor(100 * (now - self.created_at - self.pending_s) / span)))

    def video_duration_field(self) -> int:
        if self.video_duration_s is None:
            # Not probed yet: report the longest billable input, matching the reservation.
            return self.spec.max_seconds
        return max(1, whole_seconds_up(self.video_duration_s))

    def _task_info(self, status: TaskStatus, now: float) -> dict[str, Any]:
        if status in ("completed", "failed"):
            return {"can_cancel": False, "video_duration": self.video_duration_field()}
        remaining = max(0, round(self.script.estimated_time - (now - self.created_at)))
        return {
            "can_cancel": True,
            "estimated_time": remaining,
            "video_duration": self.video_duration_field(),
        }

    def _usage(self) -> dict[str, Any]:
        return {
            "billing_rule": "per_second",
            "credits_reserved": self.credits_reserved,
            "user_group": "default",
        }

    def create_json(self) -> dict[str, Any]:
        """The 200 body of the create call (§1.2): always pending with progress 0."""
        return {
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "video.generation.task",
            "progress": 0,
            "status": "pending",
            "task_info": {
                "can_cancel": True,
                "estimated_time": self.script.estimated_time,
                "video_duration": self.video_duration_field(),
            },
            "type": "video",
            "usage": self._usage(),
        }

    def query_json(self, now: float | None = None, *, usage: bool = True) -> dict[str, Any]:
        """The `GET /v1/tasks/{id}` body (§2.1), also the callback payload (§5).

        `usage` is not in the query schema and "may or may not be echoed" (§2.1): the
        simulator's `echo_usage` switch decides.
        """
        now = self.clock.now() if now is None else now
        status = self.status_at(now)
        body: dict[str, Any] = {"created": self.created}
        if status == "failed":
            body["error"] = {
                "code": self.error_code,
                "message": self.error_message,
                "type": "task_error",
            }
        body.update(
            id=self.id,
            model=self.model,
            object="video.generation.task",
            progress=self.progress_at(now),
        )
        if status == "completed" and self.results_mode != "missing":
            body["results"] = [self.result_url] if self.result_url else []
        body.update(status=status, task_info=self._task_info(status, now), type="video")
        if usage:
            body["usage"] = self._usage()
        return body

    def snapshot(self, *, usage: bool = True) -> dict[str, Any]:
        """Everything a test or the control API may want to inspect."""
        now = self.clock.now()
        return {
            "id": self.id,
            "status": self.status_at(now),
            "expired": self.expired(now),
            "request": self.body,
            "callback_url": self.callback_url,
            "counts": dict(self.counts),
            "inputs_checked": self.inputs_checked,
            "video_duration_s": self.video_duration_s,
            "script": self.script.model_dump(mode="json"),
            "callbacks": [
                {
                    "delivery": a.delivery,
                    "attempt": a.attempt,
                    "status": a.status,
                    "error": a.error,
                    "ok": a.ok,
                    "at": a.at,
                }
                for a in self.callback_log
            ],
            "settled": self.settled.is_set(),
            # What the money check compares with the bot's ledger (billed, and for how much).
            "finalized": self.finalized,
            "outcome": self.outcome,
            "credits_reserved": self.credits_reserved,
            "results_mode": self.results_mode,
            "task": self.query_json(now, usage=usage),
        }
