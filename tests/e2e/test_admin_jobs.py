"""/kling-admin jobs: re-posting an archived result, failing a stuck job (not one the provider
runs), unknown ids."""

from __future__ import annotations

import pytest

from sandbox.evolink_sim import TaskScript
from storage.models import JobState, LedgerKind
from tests.e2e.admin_view import (
    actions_by,
    add_moderator,
    admin,
    assert_refused,
    audited,
    edit_delivered,
    jobs,
    try_edit,
)
from tests.e2e.harness import Stack
from tests.e2e.user_view import ledger

# No Discord rate limits: several /edits in one channel within seconds are not the point.
pytestmark = pytest.mark.stack(rate_limits=False)


async def test_redeliver_posts_the_archived_video_again_in_the_jobs_thread(
    stack: Stack,
) -> None:
    mod = add_moderator(stack)
    alice = stack.world.member
    await stack.start_bot()
    first = await edit_delivered(stack)
    [job] = await jobs(stack)
    assert job.thread_id == first.channel_id
    billed = [(e.kind, e.seconds) for e in await ledger(stack)]
    assert billed == [(LedgerKind.RESERVE, 4), (LedgerKind.SETTLE, 0)]  # settled as reserved
    listed = await admin(stack, mod, "jobs list", {"member": alice})
    # Our seconds and credits, and the provider's credits beside them.
    assert listed.startswith(
        f"#{job.id} · delivered · <@{alice.user.id}> · 4 s · 48 cr (provider 48) · "
    )

    answer = await admin(stack, mod, "jobs redeliver", {"job": job.id})
    assert answer == (
        f"Re-posting the result of job #{job.id} for <@{alice.user.id}>; it appears in the "
        "job's thread in a moment."
    )
    again = await stack.emu.wait_for_message(
        first.channel_id, lambda m: bool(m.attachments) and m.id != first.id
    )
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()  # the tracker posted it: let it record the post
    [original], [reposted] = first.attachments, again.attachments
    assert reposted.filename == original.filename
    assert reposted.data == original.data and len(reposted.data) > 0
    assert again.pinged_user_ids == [alice.user.id]  # the member hears about it
    assert not again.mention_everyone and again.mention_roles == []

    # A re-post is not a new edit: nothing re-run, nothing billed twice.
    assert stack.sim.create_attempts == 1
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == billed
    [job] = await jobs(stack)
    assert job.state is JobState.DELIVERED and job.delivered_message_id == again.id
    assert actions_by(await audited(stack, mod), mod.user.id) == ["jobs.redeliver"]


async def test_fail_refuses_a_running_task_which_is_then_delivered_and_billed(
    stack: Stack,
) -> None:
    """The provider cannot cancel a task (EVOLINK_API.md §3): `jobs fail` says so and
    changes nothing; the bot keeps tracking the task and delivers it."""
    mod = add_moderator(stack)
    await stack.start_bot()
    stack.sim.script_next_task(TaskScript(processing_s=1_000_000))  # until complete_now
    assert "started" in await try_edit(stack)
    [job] = await jobs(stack)
    assert job.state is JobState.SUBMITTED and job.thread_id is not None

    listed = await admin(stack, mod, "jobs list", {"state": "submitted"})
    assert listed.startswith(f"#{job.id} · submitted")
    assert_refused(await admin(stack, mod, "jobs redeliver", {"job": job.id}),
                   f"Job #{job.id} is not finished (submitted)")
    assert_refused(
        await admin(stack, mod, "jobs fail", {"job": job.id, "reason": "stuck at the provider"}),
        f"Job #{job.id} was not changed: it is running at the provider",
        "the provider cannot cancel it. The bot keeps tracking it and delivers it if it "
        "completes; if the provider fails it, it is refunded automatically.",
    )
    assert actions_by(await audited(stack, mod), mod.user.id) == []

    task = stack.sim.tasks[job.provider_task_id or ""]
    await stack.sim.wait_until(lambda: task.inputs_checked)  # measured, then completed
    stack.sim.complete_now(task.id)
    await stack.emu.wait_for_message(job.thread_id, lambda m: bool(m.attachments))
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()
    [job] = await jobs(stack)
    assert job.state is JobState.DELIVERED and job.error_code is None
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == [
        (LedgerKind.RESERVE, 4), (LedgerKind.SETTLE, 0)
    ]
    assert stack.sim.ledger.used == job.credits == 48  # billed by the provider = settled


@pytest.mark.money_open("a moderator fails an uncertain job whose task the provider did create")
async def test_fail_stops_an_uncertain_job_refunds_it_and_tells_the_member(stack: Stack) -> None:
    mod = add_moderator(stack)
    alice = stack.world.member
    await stack.start_bot(EVOLINK_READ_TIMEOUT_SECONDS="0.3")
    stack.sim.hang_next_create()  # the create's answer is lost: nobody knows if it runs
    assert "did not answer in time" in await try_edit(stack)
    [job] = await jobs(stack)
    assert job.state is JobState.SUBMISSION_UNKNOWN

    answer = await admin(
        stack, mod, "jobs fail", {"job": job.id, "reason": "not on the provider dashboard"}
    )
    assert answer == (
        f"Job #{job.id} is stopped and marked failed. 4 s went back to <@{alice.user.id}>."
    )
    # The status message was posted before the create call, with its thread: the notice
    # goes there.
    assert job.thread_id is not None
    notice = await stack.emu.wait_for_message(
        stack.emu.channel(job.thread_id), lambda m: "Stopped by a moderator" in m.content
    )
    assert "Stopped by a moderator: not on the provider dashboard" in notice.content
    assert "Nothing was charged" in notice.content
    assert notice.pinged_user_ids == [alice.user.id]

    [job] = await jobs(stack)
    assert job.state is JobState.FAILED and job.error_code == "moderator_failed"
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == [
        (LedgerKind.RESERVE, 4), (LedgerKind.REFUND, -4)
    ]
    shown = await admin(stack, mod, "user show", {"member": alice})
    assert "Today: 0 s used" in shown and "Running: 0 of" in shown
    assert_refused(
        await admin(stack, mod, "jobs fail", {"job": job.id, "reason": "again"}),
        f"Job #{job.id} is already finished (failed)",
    )
    assert actions_by(await audited(stack, mod), mod.user.id) == ["jobs.fail"]


async def test_unknown_job_ids_get_a_clear_refusal(stack: Stack) -> None:
    mod = add_moderator(stack)
    await stack.start_bot()
    for path, options in (
        ("jobs redeliver", {"job": 424242}),
        ("jobs fail", {"job": 424242, "reason": "stuck"}),
    ):
        answer = await admin(stack, mod, path, options)
        assert answer == "❌ Job #424242 does not exist on this server.", (path, answer)
    assert await audited(stack, mod) == []
