"""A restart at any persisted state ends with exactly one delivery (or an honest unknown)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from bot.i18n import Text, english
from sandbox.evolink_sim import TaskScript
from storage.jobs import JobRepository
from storage.models import JobSource, JobState, LedgerKind, NewJob
from storage.quota import QuotaRepository
from tests.doubles import RecordingNotifier
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines


class SimulatedCrash(BaseException):
    """Stands in for the process dying right after a state was committed."""


class Crashes:
    def __init__(self) -> None:
        self.job_ids: list[int] = []
        self.happened = asyncio.Event()


def crash_after_entering(monkeypatch: pytest.MonkeyPatch, state: JobState) -> Crashes:
    """The process "dies" right after a job enters `state`: from then on no write and no
    notification happens, as if the old process were gone."""
    crashes = Crashes()

    def wrap(owner: type, name: str, *, returns_job: bool) -> None:
        original = getattr(owner, name)

        async def crashing(self: Any, *args: Any, **kwargs: Any) -> Any:
            if crashes.happened.is_set():
                raise SimulatedCrash("the process is gone")
            result = await original(self, *args, **kwargs)
            if returns_job and result.state is state:
                crashes.job_ids.append(result.id)
                crashes.happened.set()
                raise SimulatedCrash(state.value)
            return result

        monkeypatch.setattr(owner, name, crashing)

    for owner, name in (
        (JobRepository, "transition"),
        (JobRepository, "update"),
        (JobRepository, "become_uncertain"),
        (QuotaRepository, "reserve"),
        (QuotaRepository, "close_job"),
    ):
        wrap(owner, name, returns_job=True)
    for name in (
        "job_accepted", "progress", "result_ready", "failed", "outcome_unknown",
        "alert_moderators",
    ):
        wrap(RecordingNotifier, name, returns_job=False)
    return crashes


@pytest.mark.parametrize(
    "state",
    [
        JobState.FETCHING,
        JobState.RESERVED,
        JobState.REHOSTED,
        JobState.SUBMITTED,
        JobState.DOWNLOADING,
        JobState.ARCHIVED,
    ],
)
async def test_restart_after_each_state_delivers_exactly_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, state: JobState
) -> None:
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=5))
    crashes = crash_after_entering(monkeypatch, state)
    with contextlib.suppress(SimulatedCrash):
        await services.engine.submit(harness.request(harness.files.clip()))
    # Later states crash inside the tracker, after submit returned.
    await asyncio.wait_for(crashes.happened.wait(), timeout=20)
    await harness.stop()
    monkeypatch.undo()

    services = await harness.start()
    job_id = crashes.job_ids[0]
    await harness.notifier.wait_for_delivery(job_id)
    await services.tracker.idle()
    job = await harness.job(job_id)
    assert job.state is JobState.DELIVERED
    assert harness.notifier.kinds(job_id).count("delivered") == 1
    assert harness.notifier.kinds(job_id).count("accepted") == 1
    assert harness.sim.create_attempts == 1
    kinds = [e.kind for e in await services.quota.entries_for_job(job_id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]


async def test_restart_during_submission_never_resubmits(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = await harness.start()
    crashes = crash_after_entering(monkeypatch, JobState.SUBMITTING)
    with pytest.raises(SimulatedCrash):
        await services.engine.submit(harness.request(harness.files.clip()))
    await harness.stop()
    monkeypatch.undo()
    restarted_at = time.time()
    services = await harness.start()
    job = await harness.job(crashes.job_ids[0])
    assert job.state is JobState.SUBMISSION_UNKNOWN
    assert harness.notifier.kinds(job.id) == ["accepted", "unknown"]
    assert harness.sim.create_attempts == 0
    # The inputs stay public for the usual grace period from then on, not forever.
    inputs = await services.media.for_job(job.id)
    grace = services.config.input_grace_s
    assert inputs and all(
        m.expires_at is not None and restarted_at + grace <= m.expires_at <= time.time() + grace
        for m in inputs
    )


async def test_refusal_after_restart_is_reported_to_the_member(harness: Harness) -> None:
    services = await harness.start()
    # A job the previous process had only received; its attachment is gone by now.
    job = await services.jobs.create(
        NewJob(
            guild_id=1,
            channel_id=2,
            user_id=7,
            model="kling-o1-video-edit",
            prompt="snow",
            source=JobSource(video_url=harness.files.url("vanished.mp4")),
            callback_secret="c" * 32,
        ),
        now=0.0,
    )
    await harness.stop()
    await harness.start()
    await harness.notifier.wait_for_event("failed", job.id)
    rejected = await harness.job(job.id)
    assert rejected.state is JobState.REJECTED
    shown = english(Text.from_stored(rejected.error_message or ""))  # as a member reads it
    assert shown == "Could not download the clip (HTTP 404)"
    assert harness.sim.create_attempts == 0


async def test_edit_again_interrupted_while_checking_ends_rejected_once(
    harness: Harness,
) -> None:
    services = await harness.start()
    # The previous process was copying an archived result ("Edit again") when it died.
    job = await services.jobs.create(
        NewJob(
            guild_id=1, channel_id=2, user_id=7, model="kling-o1-video-edit", prompt="snow",
            source=JobSource(video_url="", video_media_token="archived-token"),
            callback_secret="c" * 32,
        ),
        now=0.0,
    )
    await services.jobs.transition(
        job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=0.0
    )
    await harness.stop()

    services = await harness.start()
    await harness.notifier.wait_for_event("failed", job.id)
    rejected = await harness.job(job.id)
    assert rejected.state is JobState.REJECTED
    assert "restarted while checking" in (rejected.error_message or "")
    snapshot = await services.quota.snapshot(
        guild_id=1, user_id=7, role_ids=[], day_start=0.0, month_start=0.0
    )
    assert snapshot.active_jobs == 0
    assert await services.quota.entries_for_job(job.id) == []

    await harness.stop()
    await harness.start()
    await harness.stop()
    assert harness.notifier.kinds(job.id) == ["failed"]
    assert harness.sim.create_attempts == 0
