"""Waiting helpers of EvolinkSimulator for tests: they re-check on every task change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from .tasks import CallbackAttempt, SimTask, lookup_task

if TYPE_CHECKING:
    from .clock import Signal


class Waiters:
    """Mixed into EvolinkSimulator."""

    tasks: dict[str, SimTask]
    changed: Signal

    # The `timeout` parameters are part of the API other tests use, hence the noqa.
    async def wait_for_callbacks(
        self,
        task_id: str,
        n: int,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        successful: bool = False,
    ) -> list[CallbackAttempt]:
        """Wait until `n` callback attempts (or `n` 2xx deliveries) were made for the task."""
        task = lookup_task(self.tasks, task_id)

        def count() -> int:
            return sum(1 for a in task.callback_log if a.ok or not successful)

        def done() -> bool:
            if count() < n and task.settled.is_set():
                raise AssertionError(
                    f"callback delivery for {task_id} finished after {count()} of {n} callbacks"
                )
            return count() >= n

        await self.changed.wait_for(done, timeout)
        return list(task.callback_log)

    async def wait_until_settled(
        self,
        task_id: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> SimTask:
        """Wait until the task is terminal and all its callback deliveries have ended."""
        task = lookup_task(self.tasks, task_id)
        await asyncio.wait_for(task.settled.wait(), timeout)
        return task

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Re-check `predicate` whenever a task changes (inputs checked, terminal, callback)."""
        await self.changed.wait_for(predicate, timeout)
