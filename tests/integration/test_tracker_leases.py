"""A tracker leases only the jobs it can start now: a job leased to wait in one process's
queue is kept from the other processes, and its lease could end while it waits."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from aiolimiter import AsyncLimiter

from bot.evolink import EditTaskRequest
from bot.services import Services
from sandbox.evolink_sim import TaskScript
from storage.models import JobSource, JobState, NewJob
from tests.integration.engine_harness import FAST_SCHEDULE, Harness

pytestmark = pytest.mark.both_engines

SLOTS = 2
JOBS = 6


class GatedLimiter(AsyncLimiter):
    """Lets calls through until `close()`; then each waits until `open()`, counted."""

    def __init__(self) -> None:
        super().__init__(1000, 1.0)
        self._gate = asyncio.Event()
        self._gate.set()
        self.waiting = 0
        self._arrived = asyncio.Condition()

    def close(self) -> None:
        self._gate.clear()

    def open(self) -> None:
        self._gate.set()

    async def until_waiting(self, count: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.waiting >= count)

    async def acquire(self, amount: float = 1) -> None:
        if not self._gate.is_set():
            async with self._arrived:
                self.waiting += 1
                self._arrived.notify_all()
            await self._gate.wait()
        await super().acquire(amount)


async def provider_tasks(services: Services, count: int) -> list[str]:
    return [
        (await services.client.create_edit_task(EditTaskRequest(
            model="kling-o1-video-edit", prompt=f"edit {index}",
            video_url="https://cdn.example/clip.mp4",
        ))).id
        for index in range(count)
    ]


async def submitted_jobs(services: Services, task_ids: list[str]) -> list[int]:
    """A job SUBMITTED for each provider task, all due now."""
    ids = []
    for index, task_id in enumerate(task_ids):
        job = await services.jobs.create(NewJob(
            guild_id=1, channel_id=2, user_id=index, model="kling-o1-video-edit",
            prompt=f"edit {index}", source=JobSource(video_url="https://cdn.example/c.mp4"),
            callback_secret="s" * 32,
        ), now=0.0)
        for step in (JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED,
                     JobState.SUBMITTING):
            await services.jobs.transition(job.id, step, expected=None, now=0.0)
        await services.jobs.transition(
            job.id, JobState.SUBMITTED, expected=None, now=time.time(),
            provider_task_id=task_id, submitted_at=0.0, next_poll_at=0.0,
            status_message_id=job.id, thread_id=job.id,
        )
        ids.append(job.id)
    return ids


@pytest.mark.money_open("jobs written straight to the database, without reservations")
async def test_a_busy_tracker_holds_no_lease_on_a_job_it_cannot_start(harness: Harness) -> None:
    limiter = GatedLimiter()
    # Polled once each, then not again within the test.
    schedule = dataclasses.replace(
        FAST_SCHEDULE, concurrency=SLOTS, lease_s=600.0, min_interval_s=600.0,
        max_interval_s=600.0,
    )
    services = await harness.start(limiter, schedule=schedule)
    harness.sim.set_default_script(TaskScript(processing_s=600, check_inputs=False))
    task_ids = await provider_tasks(services, JOBS)
    limiter.close()  # every poll now hangs in flight, holding its slot
    job_ids = await submitted_jobs(services, task_ids)
    services.tracker.wake()
    await limiter.until_waiting(SLOTS)
    await services.tracker.run_due()  # another pass while every slot is taken
    jobs = [await services.jobs.get(job_id) for job_id in job_ids]
    held = [job for job in jobs if job is not None and job.lease_until is not None
            and job.next_poll_at == job.lease_until]
    assert len(held) == SLOTS, "jobs were leased to wait for a slot"
    assert all(job.leased_by == services.jobs.owner for job in held)
    # The others stay due for whichever process has a slot first.
    assert sum(1 for job in jobs if job is not None and job.next_poll_at == 0.0) == JOBS - SLOTS
    limiter.open()
    for _ in range(JOBS):  # each pass starts at least one of the jobs still waiting
        await services.tracker.idle()
        jobs = [await services.jobs.get(job_id) for job_id in job_ids]
        if all(job is not None and job.poll_count == 1 for job in jobs):
            break
        await services.tracker.run_due()
    assert [job.poll_count if job else None for job in jobs] == [1] * JOBS
