"""Many jobs in flight: one loop tracks them all, and provider calls respect the limiter."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiolimiter import AsyncLimiter

from bot.evolink import EditTaskRequest
from sandbox.evolink_sim import TaskScript
from storage.models import JobSource, JobState, NewJob
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

JOBS = 200
RATE = 100.0


class CountingLimiter(AsyncLimiter):
    """The real limiter, remembering when each call was let through."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate, 1.0)
        self.granted: list[float] = []

    async def acquire(self, amount: float = 1) -> None:
        await super().acquire(amount)
        self.granted.append(asyncio.get_running_loop().time())


@pytest.mark.money_open("jobs written straight to the database, without reservations")
async def test_two_hundred_jobs_are_tracked_by_one_loop_within_the_rate_limit(
    harness: Harness,
) -> None:
    limiter = CountingLimiter(RATE)
    services = await harness.start(limiter=limiter)
    harness.sim.set_default_script(TaskScript(processing_s=5, check_inputs=False))
    task_of_job: dict[int, str] = {}
    for index in range(JOBS):
        task = await services.client.create_edit_task(
            EditTaskRequest(
                model="kling-o1-video-edit",
                prompt=f"edit {index}",
                video_url="https://cdn.example/clip.mp4",
            )
        )
        job = await services.jobs.create(
            NewJob(
                guild_id=1,
                channel_id=2,
                user_id=index,
                model="kling-o1-video-edit",
                prompt=f"edit {index}",
                source=JobSource(video_url="https://cdn.example/c.mp4"),
                callback_secret="s" * 32,
            ),
            now=0.0,
        )
        for step in (JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED, JobState.SUBMITTING):
            await services.jobs.transition(job.id, step, expected=None, now=0.0)
        await services.jobs.transition(
            job.id,
            JobState.SUBMITTED,
            expected=None,
            now=time.time(),
            provider_task_id=task.id,
            submitted_at=0.0,
            next_poll_at=0.0,
            status_message_id=job.id,
            thread_id=job.id,
        )
        task_of_job[job.id] = task.id
    services.tracker.wake()
    job_ids = list(task_of_job)

    await harness.notifier.wait_for(
        lambda: all(("delivered", jid) in harness.notifier.events for jid in job_ids),
        limit_s=120,
    )
    loops = [t for t in asyncio.all_tasks() if t.get_name() == "job-tracker"]
    assert len(loops) == 1
    gets = [harness.sim.request_counts(task_of_job[jid])["get"] for jid in job_ids]
    assert max(gets) <= 4, "a job was polled far more often than its schedule allows"
    # Every provider call went through the shared limiter. A leaky bucket lets through at
    # most its capacity plus rate × T in any window of T seconds: here 100 + 100 per second.
    balance_reads = 1  # the provider balance, read at start (then at most every 30 s)
    assert len(limiter.granted) == JOBS + sum(gets) + balance_reads
    times = limiter.granted
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    assert busiest <= 2 * RATE + 1
