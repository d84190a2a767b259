"""Moderators' and members' follow-ups go through the engine, like the bot's own work."""

from __future__ import annotations

import pytest

from bot.admin import AdminRefused
from bot.jobs.errors import EditRefused
from bot.jobs.models import Requester
from sandbox.evolink_sim import TaskScript
from storage.models import JobState, LedgerKind
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

MODERATOR = 99


async def test_redeliver_of_a_failed_post_retries_and_records_the_message_id(
    harness: Harness,
) -> None:
    services = await harness.start()
    notifier = harness.notifier
    attempts = services.config.schedule.max_delivery_attempts
    notifier.fail_deliveries = attempts  # Discord down for the whole first delivery
    job = await services.engine.submit(harness.request(harness.files.clip()))
    await notifier.wait_for_event("failed", job.id)
    gave_up = await harness.job(job.id)
    assert (gave_up.state, gave_up.error_code) == (JobState.FAILED, "delivery_failed")
    assert gave_up.delivered_message_id is None
    assert notifier.kinds(job.id).count("delivery_failed") == attempts

    notifier.fail_deliveries = 1  # the re-post meets one more hiccup and retries it
    redelivery = await services.admin.jobs_redeliver(job.guild_id, MODERATOR, job.id)
    assert redelivery.job.state is JobState.ARCHIVED
    await notifier.wait_for_delivery(job.id)
    await services.tracker.idle()

    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED and done.error_code is None
    assert done.delivered_message_id == notifier.delivered_message_ids[job.id][-1]
    assert notifier.kinds(job.id).count("delivery_failed") == attempts + 1
    states = [e.to_state for e in await services.jobs.events(job.id)]
    assert states[-3:] == [JobState.FAILED, JobState.ARCHIVED, JobState.DELIVERED]
    assert harness.sim.create_attempts == 1  # a re-post is never a new paid task


async def test_fail_goes_through_the_engine_and_tells_the_member(harness: Harness) -> None:
    services = await harness.start()
    # A proxy's error page, and the provider's dashboard shows nothing was created: the
    # moderator may refund (were a task there, the money check at the end would catch it).
    harness.sim.proxy_fail_next_create(status=502, created=False)
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMISSION_UNKNOWN

    failed = await services.admin.jobs_fail(job.guild_id, MODERATOR, job.id, "stuck")
    assert failed.job.state is JobState.FAILED and failed.refunded_seconds == job.billed_seconds
    await harness.notifier.wait_for_event("failed", job.id)
    assert (await harness.job(job.id)).error_code == "moderator_failed"
    with pytest.raises(AdminRefused, match="already finished"):
        await services.admin.jobs_fail(job.guild_id, MODERATOR, job.id, "again")
    assert harness.notifier.kinds(job.id).count("failed") == 1


async def test_fail_leaves_a_running_provider_task_tracked_and_billed(harness: Harness) -> None:
    """The provider cannot cancel a task (EVOLINK_API.md §3): `jobs fail` refuses, the bot
    keeps tracking it, delivers it when it completes and settles what the provider billed."""
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=1_000_000))  # until complete_now
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMITTED and job.provider_task_id is not None

    with pytest.raises(AdminRefused, match="the provider cannot cancel it") as refused:
        await services.admin.jobs_fail(job.guild_id, MODERATOR, job.id, "stuck")
    assert "delivers it if it completes" in str(refused.value)
    assert "refunded automatically" in str(refused.value)
    assert (await harness.job(job.id)).state is JobState.SUBMITTED

    # Completed once the provider has measured the clip (a task forced to complete before
    # that is billed the longest billable length).
    task = harness.sim.tasks[job.provider_task_id]
    await harness.sim.wait_until(lambda: task.inputs_checked)
    harness.sim.complete_now(job.provider_task_id)
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()
    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED and harness.notifier.kinds(job.id).count("failed") == 0
    kinds = [e.kind for e in await services.quota.entries_for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert harness.sim.ledger.used == done.credits


async def test_rerun_is_only_for_the_requester_or_a_moderator(harness: Harness) -> None:
    services = await harness.start()
    job = await services.engine.submit(harness.request(harness.files.clip(), user_id=7))
    await harness.notifier.wait_for_delivery(job.id)
    with pytest.raises(EditRefused) as refused:
        await services.actions.rerun(job.id, job.guild_id, Requester(user_id=8))
    assert refused.value.code == "not_your_job" and harness.sim.create_attempts == 1
    moderator = Requester(user_id=9, manages_guild=True)
    again = await services.actions.rerun(job.id, job.guild_id, moderator)
    assert again.user_id == 9 and again.parent_job_id == job.id
    assert harness.sim.create_attempts == 2
