"""Jobs a dead process held before the provider are taken over by a survivor (issue 14).

A process holds its jobs before the provider (checking files, publishing them, creating
the task) by a lease it renews while it lives. When it dies (here: its tracker stops, so
nothing is renewed or released, and the clock moves past the lease), another process takes
them over with the restart's money rules: a job that provably never reached the provider
is carried on (or, when its checked files stayed on the dead process's disk, released); a
job whose create may have been sent is an unknown outcome, never created again.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.notifier import StatusRefs
from bot.services import Services
from storage.models import Job, JobState, LedgerKind
from tests.doubles import RecordingNotifier
from tests.integration.engine_harness import FAST_SCHEDULE, Harness, HeldRequests
from tests.integration.money import assert_money_reconciles
from tests.integration.two_processes import Clock, running
from tests.s3_endpoint import S3Bucket


class SilentStatusNotifier(RecordingNotifier):
    """A process whose status message never gets posted: it dies holding a REHOSTED job."""

    def __init__(self) -> None:
        super().__init__()
        self.posting = asyncio.Event()

    async def job_accepted(self, job: Job) -> StatusRefs:
        self.posting.set()
        await asyncio.Event().wait()  # until the process dies (its tasks are cancelled)
        raise AssertionError("unreachable")


class ClosingLimiter:
    """The provider rate limit of a process that dies while its create calls wait for it."""

    def __init__(self) -> None:
        self.closed = False
        self.held = HeldRequests()  # never released: the process dies first

    async def acquire(self) -> None:
        if self.closed:
            await self.held.hold()


async def _die(harness: Harness, services: Services, submit: asyncio.Task[Job]) -> None:
    """The process stops renewing anything, its work is cut off, and its lease ends."""
    await services.tracker.stop(grace_s=0)
    submit.cancel()
    await asyncio.gather(submit, return_exceptions=True)
    clock = harness.clock
    assert isinstance(clock, Clock)
    clock.offset = FAST_SCHEDULE.lease_s + 1


async def _only(services: Services, state: JobState) -> Job:
    [job] = await services.jobs.in_states([state])
    return job


async def _survivor_delivers(
    survivor: Services, second: Harness, told: RecordingNotifier, job: Job
) -> Job:
    """The survivor takes the orphan over and delivers it; the books balance after."""
    await survivor.tracker.hold_intakes_once()
    await told.wait_for_event("delivered", job.id)
    await survivor.tracker.idle()
    await assert_money_reconciles(second)
    return await second.job(job.id)


async def test_a_job_whose_files_a_dead_process_was_fetching_is_checked_and_delivered_by_another(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    harness.clock = second.clock = Clock()
    second.notifier = harness.notifier  # one Discord
    held = harness.files.held = HeldRequests()
    async with running(harness, 0, cluster_database, s3_bucket) as first, \
            running(second, 1, cluster_database, s3_bucket) as survivor:
        submit = asyncio.create_task(first.engine.submit(harness.request(harness.files.clip())))
        await held.until_waiting(1)
        job = await _only(first, JobState.FETCHING)
        await survivor.tracker.hold_intakes_once()  # its holder lives: not the survivor's
        assert (await second.job(job.id)).leased_by == "shards-0"
        await _die(harness, first, submit)
        harness.files.held = None
        held.release()

        done = await _survivor_delivers(survivor, second, harness.notifier, job)
    assert done.state is JobState.DELIVERED
    assert len(harness.notifier.delivered[job.id]) == 1
    assert harness.sim.create_attempts == 1


async def test_a_job_never_sent_to_the_provider_is_sent_once_by_the_process_taking_it_over(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    harness.clock = second.clock = Clock()
    silent = harness.notifier = SilentStatusNotifier()
    async with running(harness, 0, cluster_database, s3_bucket) as first, \
            running(second, 1, cluster_database, s3_bucket) as survivor:
        submit = asyncio.create_task(first.engine.submit(harness.request(harness.files.clip())))
        await asyncio.wait_for(silent.posting.wait(), 20)
        job = await _only(first, JobState.REHOSTED)  # its inputs are in the bucket
        await _die(harness, first, submit)

        done = await _survivor_delivers(survivor, second, second.notifier, job)
    assert done.state is JobState.DELIVERED and done.leased_by == "shards-1"
    assert len(second.notifier.delivered[job.id]) == 1
    assert harness.sim.create_attempts == 1


async def test_a_job_whose_create_may_have_been_sent_is_never_created_again_by_a_survivor(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    harness.clock = second.clock = Clock()
    second.notifier = harness.notifier
    limiter = ClosingLimiter()
    async with running(harness, 0, cluster_database, s3_bucket, limiter=limiter) as first, \
            running(second, 1, cluster_database, s3_bucket) as survivor:
        limiter.closed = True  # from here on, the first process's calls never go out
        submit = asyncio.create_task(first.engine.submit(harness.request(harness.files.clip())))
        await asyncio.wait_for(limiter.held.until_waiting(1), 20)
        job = await _only(first, JobState.SUBMITTING)
        await _die(harness, first, submit)

        await survivor.tracker.hold_intakes_once()
        await harness.notifier.wait_for_event("unknown", job.id)
        uncertain = await second.job(job.id)
        kinds = [e.kind for e in await survivor.quota.entries_for_job(job.id)]
    assert uncertain.state is JobState.SUBMISSION_UNKNOWN
    assert kinds == [LedgerKind.RESERVE]  # held until the task turns up or is settled
    assert harness.sim.create_attempts == 0


async def test_checked_files_left_on_a_dead_process_disk_are_released_not_charged(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness.clock = second.clock = Clock()
    second.notifier = harness.notifier
    publishing = asyncio.Event()

    async def publish_until_death(job: Job) -> Job:
        publishing.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with running(harness, 0, cluster_database, s3_bucket) as first, \
            running(second, 1, cluster_database, s3_bucket) as survivor:
        monkeypatch.setattr(first.engine, "_publish", publish_until_death)
        submit = asyncio.create_task(first.engine.submit(harness.request(harness.files.clip())))
        await asyncio.wait_for(publishing.wait(), 20)
        job = await _only(first, JobState.RESERVED)  # checked, reserved, files on its disk
        await _die(harness, first, submit)

        await survivor.tracker.hold_intakes_once()
        await harness.notifier.wait_for_event("failed", job.id)
        released = await second.job(job.id)
        kinds = [e.kind for e in await survivor.quota.entries_for_job(job.id)]
    assert released.state is JobState.FAILED
    assert released.error_code == "taken_over_unpublished"
    assert kinds == [LedgerKind.RESERVE, LedgerKind.RELEASE]
    assert harness.sim.create_attempts == 0


class UnreachableModerators(RecordingNotifier):
    """Discord refuses the first "outcome unknown" notice."""

    async def outcome_unknown(self, job: Job, log_channel_id: int | None) -> None:
        if not self.events:
            await self._record("unknown_failed", job.id)
            raise RuntimeError("Discord is unavailable")
        await super().outcome_unknown(job, log_channel_id)


async def test_one_orphan_that_cannot_be_reported_does_not_strand_the_others(
    harness: Harness, second: Harness, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    harness.clock = second.clock = Clock()
    refusing = second.notifier = UnreachableModerators()
    limiter = ClosingLimiter()
    async with running(harness, 0, cluster_database, s3_bucket, limiter=limiter) as first, \
            running(second, 1, cluster_database, s3_bucket) as survivor:
        limiter.closed = True
        submits = [
            asyncio.create_task(first.engine.submit(
                harness.request(harness.files.clip(f"c{n}.mp4"), user_id=100 + n)
            ))
            for n in range(2)
        ]
        await asyncio.wait_for(limiter.held.until_waiting(2), 20)  # both at their create
        for submit in submits:
            await _die(harness, first, submit)

        await survivor.tracker.hold_intakes_once()
        left = await survivor.jobs.in_states([JobState.SUBMISSION_UNKNOWN])
    assert len(left) == 2  # both taken over, though the first report failed
    assert [kind for kind, _ in refusing.events] == ["unknown_failed", "unknown"]
    assert harness.sim.create_attempts == 0
