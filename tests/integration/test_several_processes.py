"""Two bot processes on one PostgreSQL database and one S3 bucket (issue 14, item 3).

Each "process" is a full `Services` with its own engine and connections, as `python -m bot
run` with `SHARD_COUNT=2` and `SHARD_IDS=0` or `1` builds it; both talk to the same EvoLink
simulator. The media live in one bucket of the loopback S3 endpoint (tests/s3_endpoint.py),
so either process can deliver what the other archived.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.jobs.config import ScheduleConfig
from bot.jobs.notifier import ArchivedResult
from storage.models import Job, JobState
from tests.doubles import RecordingNotifier
from tests.integration.engine_harness import FAST_SCHEDULE, Harness
from tests.integration.test_admission import first_finished
from tests.integration.two_processes import Clock, running
from tests.s3_endpoint import S3Bucket

# Nothing is polled on its own schedule within a test: only what a test does moves a job.
IDLE_SCHEDULE = ScheduleConfig(
    first_poll_max_s=600.0, min_interval_s=600.0, max_interval_s=600.0, lease_s=600.0
)


class StuckNotifier(RecordingNotifier):
    """A process whose posts never finish: it holds the job when it dies."""

    def __init__(self) -> None:
        super().__init__()
        self.posting = asyncio.Event()

    async def result_ready(self, job: Job, result: ArchivedResult) -> int:
        self.posting.set()
        await asyncio.Event().wait()  # until the process dies (its tasks are cancelled)
        raise AssertionError("unreachable")




async def test_jobs_submitted_on_one_process_are_delivered_exactly_once_by_both(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    second.notifier = harness.notifier  # one Discord: every post of either process
    async with running(harness, 0, cluster_database, s3_bucket) as first, \
            running(second, 1, cluster_database, s3_bucket) as other:
        jobs = [
            await first.engine.submit(
                harness.request(harness.files.clip(f"c{n}.mp4"), user_id=100 + n)
            )
            for n in range(6)
        ]
        for job in jobs:
            await harness.notifier.wait_for_event("delivered", job.id)
        await asyncio.gather(first.tracker.idle(), other.tracker.idle())
        for job in jobs:
            assert len(harness.notifier.delivered[job.id]) == 1
            done = await first.jobs.get(job.id)
            assert done is not None and done.state is JobState.DELIVERED
        assert harness.sim.create_attempts == len(jobs)


async def test_a_job_held_by_a_dead_process_is_taken_over_when_its_lease_ends(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    clock = Clock()
    harness.clock = second.clock = clock
    stuck = harness.notifier = StuckNotifier()
    async with running(harness, 0, cluster_database, s3_bucket) as first:
        job = await first.engine.submit(harness.request(harness.files.clip()))
        await asyncio.wait_for(stuck.posting.wait(), 20)  # archived, now posting it
        held = await first.jobs.get(job.id)
        assert held is not None and held.leased_by == "shards-0"
        async with running(second, 1, cluster_database, s3_bucket) as survivor:
            await survivor.tracker.run_due()  # the lease is live: the job is not its to take
            assert "delivered" not in second.notifier.kinds(job.id)
            await first.tracker.stop(grace_s=0)  # dies holding it: nothing is released
            clock.offset = FAST_SCHEDULE.lease_s + 1
            survivor.tracker.wake()
            await second.notifier.wait_for_event("delivered", job.id)
            await survivor.tracker.idle()
            done = await survivor.jobs.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert done.leased_by == "shards-1"
    assert len(second.notifier.delivered[job.id]) == 1 and stuck.delivered == {}
    assert harness.sim.create_attempts == 1


async def test_a_callback_at_one_process_reaches_the_process_holding_the_job(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    async with running(harness, 0, cluster_database, s3_bucket, IDLE_SCHEDULE) as first, \
            running(second, 1, cluster_database, s3_bucket, IDLE_SCHEDULE) as other:
        job = await first.engine.submit(harness.request(harness.files.clip()))
        assert job.provider_task_id is not None
        await harness.sim.wait_until_settled(job.provider_task_id)
        # The first process holds the job (as while it polls it), for ten minutes.
        later = time.time() + IDLE_SCHEDULE.first_poll_max_s * 2
        held = await first.jobs.lease_due(later, until=later + IDLE_SCHEDULE.lease_s, limit=1)
        assert [j.id for j in held.polls] == [job.id]
        # The provider's callback reaches the other process (what its web route calls).
        assert await other.tracker.job_hint(job.id)
        await harness.notifier.wait_for_event("delivered", job.id)
        await first.tracker.idle()
    assert second.notifier.events == []  # the holder polled and delivered it, nobody else
    assert len(harness.notifier.delivered[job.id]) == 1


@pytest.mark.money_open("the edits are still waiting for their turn at the provider")
async def test_both_processes_together_keep_to_the_provider_rate(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    clock = Clock(frozen=True)  # one second's tokens, and no more until the clock moves
    harness.clock = second.clock = clock
    rate = {"EVOLINK_REQUESTS_PER_SECOND": "4"}
    # No poll comes due meanwhile: every token goes to a create.
    async with running(harness, 0, cluster_database, s3_bucket, IDLE_SCHEDULE, **rate) as first, \
            running(second, 1, cluster_database, s3_bucket, IDLE_SCHEDULE, **rate) as other:
        # Each start read the balance (2 calls): 2 of the 4 tokens are left for creates.
        submits = {
            asyncio.create_task(services.engine.submit(
                harness.request(harness.files.clip(f"c{n}.mp4"), user_id=100 + n)
            ))
            for n, services in enumerate((first, other, first, other))
        }
        created = await first_finished(submits, 2)
        assert harness.sim.create_attempts == 2
        clock.offset += 0.3  # one more token (1.2), for whichever process asks first
        created |= await first_finished(submits - created, 1)
        assert harness.sim.create_attempts == 3 and len(created) == 3
        for waiting in submits - created:
            waiting.cancel()
        await asyncio.gather(*submits, return_exceptions=True)

