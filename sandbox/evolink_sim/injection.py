"""The scripting and fault-injection half of EvolinkSimulator's Python control API.

Per-request faults form one FIFO queue per endpoint (script.FaultQueue). Transient 404s on
queries are windows (proxy.Window) kept per task id, or for any task, beside that queue.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .proxy import ProxyStyle, Window
from .script import Fault, FaultKind, FaultQueue, TaskScript
from .tasks import lookup_task

if TYPE_CHECKING:
    from .clock import SimClock
    from .tasks import SimTask


class FaultInjection:
    """Mixed into EvolinkSimulator; the state it needs is set up by `_init_injection`."""

    clock: SimClock
    tasks: dict[str, SimTask]

    def _init_injection(self) -> None:
        self.create_faults = FaultQueue()
        self.get_faults = FaultQueue()
        self.not_found: dict[str | None, Window] = {}  # task id (None: any task) → window
        self._scripts: deque[TaskScript] = deque()
        self._default_script = TaskScript()

    def script_next_task(self, script: TaskScript) -> None:
        self._check_result_path(script)
        self._scripts.append(script)

    def set_default_script(self, script: TaskScript) -> None:
        self._check_result_path(script)
        self._default_script = script

    @staticmethod
    def _check_result_path(script: TaskScript) -> None:
        if script.result_path is not None and not script.result_path.is_file():
            raise FileNotFoundError(f"result_path does not exist: {script.result_path}")

    def _next_script(self) -> TaskScript:
        return self._scripts[0] if self._scripts else self._default_script

    @property
    def queued_scripts(self) -> list[TaskScript]:
        return list(self._scripts)

    # -- create ------------------------------------------------------------------------

    def fail_next_create(
        self, status: int, count: int = 1, retry_after: float | None = None
    ) -> None:
        self.create_faults.push(Fault("fail", status=status, retry_after=retry_after), count)

    def hang_next_create(self, count: int = 1) -> None:
        self.create_faults.push(Fault("hang"), count)

    def drop_next_create_connection(self, count: int = 1) -> None:
        self.create_faults.push(Fault("drop"), count)

    def delay_next_create(self, seconds: float, count: int = 1) -> None:
        """Create the task, then answer only after `seconds` real seconds."""
        self.create_faults.push(Fault("delay", delay_s=seconds), count)

    def proxy_fail_next_create(
        self,
        status: int = 502,
        count: int = 1,
        *,
        created: bool = True,
        style: ProxyStyle = "nginx",
    ) -> None:
        """A proxy in front of EvoLink answers an HTML 5xx page. `created=True`: only after
        the backend created (and bills, and runs) the task; `False`: before anything."""
        kind: FaultKind = "proxy" if created else "proxy_before"
        self.create_faults.push(Fault(kind, status=status, style=style), count)

    def drop_after_create_next(self, count: int = 1) -> None:
        """Create the task, then close the connection without answering."""
        self.create_faults.push(Fault("drop_after"), count)

    # -- query -------------------------------------------------------------------------

    def fail_next_get(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        self.get_faults.push(Fault("fail", status=status, retry_after=retry_after), count)

    def delay_next_get(self, seconds: float, count: int = 1) -> None:
        self.get_faults.push(Fault("delay", delay_s=seconds), count)

    def proxy_fail_next_get(
        self, status: int = 502, count: int = 1, *, style: ProxyStyle = "nginx"
    ) -> None:
        self.get_faults.push(Fault("proxy", status=status, style=style), count)

    def not_found_next_get(
        self,
        count: int | None = None,
        task_id: str | None = None,
        *,
        for_seconds: float | None = None,
    ) -> None:
        """`GET /v1/tasks/{id}` answers 404 `task_not_found` for the next `count` queries
        (default 1), or for `for_seconds` provider seconds, of `task_id` (None: any task),
        then normally again. Replaces an earlier window for the same target."""
        if task_id is not None:
            lookup_task(self.tasks, task_id)  # KeyError for a task never created
        window = Window.of(count, for_seconds)
        window.start(self.clock.now())
        self.not_found[task_id] = window

    def not_found_hit(self, task_id: str) -> bool:
        """Does this query fall in a transient-404 window? (The task's own one first.)"""
        now = self.clock.now()
        for key in (task_id, None):
            window = self.not_found.get(key)
            if window is not None and window.hit(now):
                return True
        return False

    def pending_faults(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "create": self.create_faults.pending(),
            "get": self.get_faults.pending(),
            "not_found": {
                key or "*": window.describe()
                for key, window in self.not_found.items()
                if not window.over(now)
            },
        }

    def clear_faults(self) -> None:
        """Forget queued faults, 404 windows and task scripts (the default script stays).
        Result-link outages stay with their links."""
        self.create_faults.clear()
        self.get_faults.clear()
        self.not_found.clear()
        self._scripts.clear()
