"""A restart at any persisted state ends with exactly one delivery (or an honest unknown)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from sandbox.evolink_sim import TaskScript
from storage.jobs import JobRepository
from storage.models import JobSource, JobState, LedgerKind, NewJob
from storage.quota import QuotaRepository
from tests.doubles import RecordingNotifier
from tests.integration.engine_harness import Harness


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
    await harness.notifier.wait_for_event("delivered", job_id)
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
    await harness.start()
    job = await harness.job(crashes.job_ids[0])
    assert job.state is JobState.SUBMISSION_UNKNOWN
    assert harness.notifier.kinds(job.id) == ["unknown"]
    assert harness.sim.create_attempts == 0


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
    assert rejected.state is JobState.REJECTED and "HTTP 404" in (rejected.error_message or "")
    assert harness.sim.create_attempts == 0
