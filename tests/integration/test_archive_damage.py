"""The result archive skips the fsync before the post; a copy a crash damaged is never posted."""

from __future__ import annotations

import hashlib

import pytest

from storage.models import JobState, MediaRole
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut short"),
        pytest.param(lambda data: bytes(len(data)), id="right length, all zeros"),
    ],
)
async def test_an_archive_damaged_by_a_crash_is_fetched_again_not_posted(
    harness: Harness, damage: object
) -> None:
    services = await harness.start()
    harness.notifier.fail_deliveries = 1  # the first post fails: the job waits, archived
    job = await services.engine.submit(harness.request(harness.files.clip()))
    await harness.notifier.wait_for_event("delivery_failed", job.id)
    [archived] = await services.media.for_job(job.id, MediaRole.RESULT)
    path = services.store.path_of(archived)
    good = path.read_bytes()
    await harness.stop()  # "the power went out" before the file reached the disk:
    path.write_bytes(damage(good))  # type: ignore[operator]

    services = await harness.start()
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()
    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    [posted] = harness.notifier.delivered[job.id]
    [posted_bytes] = harness.notifier.delivered_bytes[job.id]
    assert hashlib.sha256(posted_bytes).digest() == hashlib.sha256(good).digest()
    assert posted.media.id != archived.id  # a fresh copy, the damaged one deleted
    assert not path.exists()
    to_states = [e.to_state for e in await services.jobs.events(job.id)]
    assert to_states[-3:] == [JobState.DOWNLOADING, JobState.ARCHIVED, JobState.DELIVERED]
    assert harness.sim.create_attempts == 1
