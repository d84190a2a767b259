"""What the provider bills and what the bot records, side by side, against the simulator.

EVOLINK_API.md §6: clips under a model's range are billed clamped (standard 3–10 s; longer
clips are cut, tests/integration/test_clip_cutting.py);
§1.2: the provider reports `usage.credits_reserved` and `task_info.video_duration`.
"""

from __future__ import annotations

import contextlib
import logging

import pytest

from bot.i18n import english
from bot.jobs.messages import billing_note
from storage.models import JobState, LedgerKind
from tests.integration.engine_harness import Harness
from tests.integration.test_recovery import SimulatedCrash, crash_after_entering

pytestmark = pytest.mark.both_engines

STANDARD = "kling-o1-video-edit"
FAST = "kling-o1-video-edit-fast"
MODERATOR = 99
VIP_ROLE = 555


@pytest.mark.parametrize(
    ("seconds", "billed", "credits", "note"),
    [
        (2.0, 3, 36, "2.0 s clip, billed as 3 s, this model's minimum"),
    ],
)
async def test_a_clip_under_the_range_is_accepted_and_billed_clamped_end_to_end(
    harness: Harness, seconds: float, billed: int, credits: float, note: str
) -> None:
    services = await harness.start()
    job = await services.engine.submit(harness.request(harness.files.clip(seconds=seconds)))
    assert job.state is JobState.SUBMITTED
    assert job.duration_s == pytest.approx(seconds, abs=0.05)  # the measured length is kept
    assert (job.billed_seconds, job.credits) == (billed, credits)
    assert english(billing_note(job)) == note  # what the member reads when it starts
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()

    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    entries = await services.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, billed), (LedgerKind.SETTLE, 0)
    ]
    # The money ledger: what the simulator billed is what the bot settled.
    assert harness.sim.ledger.used == done.credits == credits
    assert harness.sim.ledger.reserved == 0
    # The provider's own figures are stored beside ours.
    assert done.provider_credits == credits
    assert done.provider_video_duration == seconds


async def test_the_provider_figures_are_stored_and_a_difference_is_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `usage` on queries (§2.1 "may or may not be echoed") the only figure is the
    create answer's, which holds the longest billable length until the clip is measured."""
    harness.sim.echo_usage = False
    services = await harness.start()
    caplog.set_level(logging.INFO, logger="bot.jobs.provider_figures")
    job = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    assert (job.credits, job.provider_credits) == (48, 120)  # an estimate so far
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()

    done = await harness.job(job.id)
    assert (done.credits, done.provider_credits) == (48, 120)
    assert harness.sim.ledger.used == 48
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    text = warning.getMessage()
    assert f"job={job.id}" in text and f"task={done.provider_task_id}" in text
    assert "ours=48" in text and "provider=120" in text


async def test_matching_provider_figures_log_no_warning(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    services = await harness.start()
    caplog.set_level(logging.INFO, logger="bot.jobs.provider_figures")
    job = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()
    done = await harness.job(job.id)
    assert (done.credits, done.provider_credits, done.provider_video_duration) == (48, 48, 4)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_resumed_job_keeps_its_model_and_its_members_role_tier(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job created under the standard model, resumed by a bot now configured with the fast
    model, is checked and billed with the standard rules and the member's role tier."""
    # Without the VIP role the member may spend 3 s a day: less than the 4 s clip.
    services = await harness.start(EVOLINK_MODEL=STANDARD, DEFAULT_DAILY_SECONDS="3")
    await services.admin.role_limit(1, MODERATOR, VIP_ROLE, daily_seconds=100)
    crashes = crash_after_entering(monkeypatch, JobState.FETCHING)
    request = harness.request(harness.files.clip(seconds=4.0))
    request.role_ids = [VIP_ROLE]
    with contextlib.suppress(SimulatedCrash):
        await services.engine.submit(request)
    await harness.stop()
    monkeypatch.undo()
    [job_id] = crashes.job_ids
    assert harness.sim.create_attempts == 0

    services = await harness.start(EVOLINK_MODEL=FAST, DEFAULT_DAILY_SECONDS="3")
    assert services.config.model == FAST
    await harness.notifier.wait_for_delivery(job_id)
    await services.tracker.idle()
    done = await harness.job(job_id)
    assert done.state is JobState.DELIVERED and done.model == STANDARD
    assert done.source.role_ids == [VIP_ROLE]
    # Standard rules: 4 s × 12 credits (the fast model would bill 6 s × 6.8).
    assert (done.billed_seconds, done.credits) == (4, 48)
    [task] = harness.sim.tasks.values()
    assert task.spec.name == STANDARD
    assert harness.sim.ledger.used == done.credits


async def test_a_resumed_job_without_the_role_tier_would_be_refused(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart: the same job from a member without the role stops at the server's
    limit when resumed, before anything is sent to the provider."""
    services = await harness.start(DEFAULT_DAILY_SECONDS="3")
    await services.admin.role_limit(1, MODERATOR, VIP_ROLE, daily_seconds=100)
    crashes = crash_after_entering(monkeypatch, JobState.FETCHING)
    with contextlib.suppress(SimulatedCrash):
        await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    await harness.stop()
    monkeypatch.undo()
    [job_id] = crashes.job_ids

    await harness.start(DEFAULT_DAILY_SECONDS="3")
    await harness.notifier.wait_for_event("failed", job_id)
    refused = await harness.job(job_id)
    assert refused.state is JobState.REJECTED and refused.error_code == "daily_quota"
    assert harness.sim.create_attempts == 0
