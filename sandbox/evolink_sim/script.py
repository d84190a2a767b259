"""What a test can script: per-task outcomes (TaskScript) and per-request faults (Fault).

Both are plain data so the same objects come in through the Python API and, as JSON,
through the `/_sim/` control API.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .contract import TASK_ERROR_MESSAGES
from .proxy import ProxyStyle, Window

CallbackMode = Literal["normal", "drop", "duplicate"]
# What a completed task's `results` holds: the link, nothing (key absent) or `[]`.
ResultsMode = Literal["normal", "missing", "empty"]


class ResultOutage(BaseModel):
    """The result link fails with `status` (or a connection reset) for the next `requests`
    downloads or for `seconds` provider seconds, then serves the file until it expires.
    Neither given: one request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["reset"] | int = 503
    requests: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, ge=0)

    @field_validator("status")
    @classmethod
    def _error_status(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 400 <= value <= 599:
            raise ValueError("status must be a 4xx or 5xx code, or 'reset'")
        return value

    @model_validator(mode="after")
    def _one_measure(self) -> ResultOutage:
        self.window()  # raises ValueError when both are given
        return self

    def window(self) -> Window:
        return Window.of(self.requests, self.seconds)


class TaskScript(BaseModel):
    """How the next created task behaves.

    `processing_s` and `estimated_time` are provider seconds (scaled by `time_scale`).
    `error_code` must be one of EvoLink's task error codes (§4.2), so a typo in a test
    fails loudly instead of producing a code the real service never sends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["completed", "failed"] = "completed"
    error_code: str = "service_error"
    error_message: str | None = None
    processing_s: float = Field(default=20.0, ge=0)
    estimated_time: int = Field(default=30, ge=0)
    result_path: Path | None = None
    callback: CallbackMode = "normal"
    # Extensions beyond the brief:
    check_inputs: bool = True  # False: skip fetching/probing the input URLs
    # §6: a clip outside the model's 3–10 s (fast 6–20 s) is billed clamped; whether the
    # upstream then refuses it is open. Default: accepted and billed clamped. True: the task
    # fails with `invalid_parameters` (an upstream refusal; not billed).
    refuse_out_of_range: bool = False
    video_duration: float | None = Field(default=None, gt=0)  # report/bill this length
    # The provider's worst day (issue 11): a billed completion without results, and a
    # result link that fails for a while after it is published.
    results: ResultsMode = "normal"
    result_outage: ResultOutage | None = None

    @field_validator("error_code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        if value not in TASK_ERROR_MESSAGES:
            raise ValueError(f"unknown EvoLink task error code {value!r}")
        return value

    def failure_message(self) -> str:
        return self.error_message or TASK_ERROR_MESSAGES[self.error_code]


# fail/drop/proxy_before create nothing; hang/delay/proxy/drop_after bite after creating.
FaultKind = Literal["fail", "hang", "drop", "delay", "proxy", "proxy_before", "drop_after"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by exactly one request."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 0.0
    style: ProxyStyle = "nginx"  # the HTML error page of a proxy fault


class FaultQueue:
    """FIFO of faults for one endpoint: `fail(429)` then `hang()` hits requests 1 and 2."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def push(self, fault: Fault, count: int) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if fault.kind == "fail" and not 400 <= fault.status <= 599:
            raise ValueError("injected status must be a 4xx or 5xx code")
        if fault.kind in ("proxy", "proxy_before") and not 500 <= fault.status <= 599:
            raise ValueError("a proxy error page has a 5xx status")
        self._queue.extend([fault] * count)

    def pop_if(self, *kinds: FaultKind) -> Fault | None:
        """Take the head fault if it is one of `kinds`; later faults wait their turn.

        Each fault bites where it belongs: a drop or a proxy page that creates nothing
        before the body is read, a failure after auth, a hang, delay, after-create proxy
        page or drop only once a task has actually been created (so an invalid body
        answered 400 does not use up a scripted hang).
        """
        if self._queue and self._queue[0].kind in kinds:
            return self._queue.popleft()
        return None

    def clear(self) -> None:
        self._queue.clear()

    def pending(self) -> list[dict[str, object]]:
        return [
            {"kind": f.kind, "status": f.status, "retry_after": f.retry_after, "delay_s": f.delay_s}
            for f in self._queue
        ]
