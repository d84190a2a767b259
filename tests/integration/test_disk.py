"""The data disk stays bounded: no new edit when it is nearly full, no crash leftovers kept,
no input of an uncertain edit public forever."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import NamedTuple

import aiohttp
import pytest

from bot.jobs.errors import EditRefused
from bot.jobs.messages import DISK_LOW
from storage.models import JobSource, JobState, NewJob
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

MIB = 1024 * 1024


class Usage(NamedTuple):
    free: int


class FakeDisk:
    def __init__(self, free: int) -> None:
        self.free = free
        self.asked: list[Path] = []
        self.threads: set[str] = set()

    def __call__(self, path: Path) -> Usage:
        self.asked.append(path)
        self.threads.add(threading.current_thread().name)
        return Usage(self.free)


async def test_a_nearly_full_disk_refuses_new_edits_before_any_download(
    harness: Harness,
) -> None:
    services = await harness.start(MIN_FREE_DISK_MB="200")
    disk = FakeDisk(free=199 * MIB)
    services.engine.deps.disk_usage = disk
    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(harness.request(harness.files.clip()))
    assert refused.value.code == "disk_low" and refused.value.text == DISK_LOW
    assert "Nothing was charged" in refused.value.reason
    assert harness.files.requests == [] and await services.jobs.search(1) == []
    assert disk.asked == [harness.tmp_path / "data"]
    # Asked on the bot's own file-work threads: on the default pool the check would wait
    # behind whatever else is queued there (issue 12).
    assert [name.split("_")[0] for name in disk.threads] == ["file-work"], disk.threads

    disk.free = 200 * MIB  # space freed: edits are taken again
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMITTED
    await harness.notifier.wait_for_delivery(job.id)


async def test_restart_sweeps_what_crashed_downloads_left(
    harness: Harness,
) -> None:
    services = await harness.start()
    incoming = harness.tmp_path / "data" / "media" / "incoming"
    # A job the previous process had only received: it is resumed after the sweep.
    job = await services.jobs.create(
        NewJob(
            guild_id=1, channel_id=2, user_id=7, model="kling-o1-video-edit", prompt="snow",
            source=JobSource(video_url=harness.files.clip()), callback_secret="c" * 32,
        ),
        now=0.0,
    )
    await harness.stop()
    crashed = incoming / "991"
    crashed.mkdir(parents=True)
    (crashed / "video.0123456789abcdef.part").write_bytes(b"x" * 1000)
    (crashed / "result.fedcba9876543210.part").write_bytes(b"x" * 1000)
    (incoming / "992").mkdir()
    kept = incoming / "993"
    kept.mkdir()
    (kept / "result").write_bytes(b"not a partial download")
    (kept / "result.0011223344556677.part").write_bytes(b"x")

    services = await harness.start()
    # The crash leftovers went; a file that is not a partial download stays.
    assert not crashed.exists() and not (incoming / "992").exists()
    assert sorted(p.name for p in kept.iterdir()) == ["result"]
    await harness.notifier.wait_for_delivery(job.id)


async def test_sweep_keeps_the_folders_of_jobs_being_fetched(harness: Harness) -> None:
    services = await harness.start()
    incoming = harness.tmp_path / "data" / "media" / "incoming"
    fetching = incoming / "5"
    fetching.mkdir(parents=True)
    (fetching / "video.0123456789abcdef.part").write_bytes(b"x")
    (incoming / "6").mkdir()
    assert await services.store.sweep_incoming(keep={5}) == 1
    assert [p.name for p in fetching.iterdir()] == ["video.0123456789abcdef.part"]
    assert not (incoming / "6").exists()


@pytest.mark.money_open("the task exists but stays uncertain until adopted")
async def test_inputs_of_an_uncertain_edit_expire_after_the_grace_period(
    harness: Harness,
) -> None:
    offset = 0.0
    harness.clock = lambda: time.time() + offset
    services = await harness.start(
        EVOLINK_READ_TIMEOUT_SECONDS="0.3", INPUT_GRACE_SECONDS="600"
    )
    harness.sim.hang_next_create()
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMISSION_UNKNOWN
    inputs = await services.media.for_job(job.id)
    assert inputs
    url = (await services.store.public_link(inputs[0])).url
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as answer:
            assert answer.status == 200  # still within the grace period
        offset = 601.0
        async with http.get(url) as answer:
            assert answer.status == 404
