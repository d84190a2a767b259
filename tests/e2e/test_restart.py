"""A restart in the middle of an edit: the result still arrives once, where it was promised."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox.evolink_sim import TaskScript
from sandbox.media_samples import make_mp4, pad_file
from storage.database import Database
from storage.jobs import JobRepository
from storage.models import JobState
from tests.e2e.harness import Stack, text_input_id
from tests.e2e.user_view import ephemeral_answer

pytestmark = pytest.mark.both_engines  # the whole bot, real discord.py, on PostgreSQL too

SLOW = TaskScript(processing_s=100_000.0)  # ~8 real minutes at the harness's time scale


async def test_restart_mid_job_delivers_exactly_once_into_the_original_thread(
    stack: Stack,
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    sim.script_next_task(SLOW)
    bot = await stack.start_bot()
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})
    started = await emu.wait_for_response(ix)
    assert "started" in started.content and started.ephemeral
    thread = await emu.wait_for_thread(world.channel)

    assert bot.services is not None
    [job] = await bot.services.jobs.search(world.guild.id)
    assert job.state is JobState.SUBMITTED and job.thread_id == thread.id
    assert job.status_message_id is not None and job.provider_task_id is not None
    await stack.stop_bot()

    # The provider finishes while the bot is down.
    sim.complete_now(job.provider_task_id)
    bot = await stack.start_bot()
    assert bot.services is not None

    delivered = await emu.wait_for_message(thread, lambda m: bool(m.attachments))
    await bot.services.tracker.idle()  # the delivering action has recorded its outcome
    job = await bot.services.jobs.get(job.id) or job
    assert job.state is JobState.DELIVERED and job.delivered_message_id == delivered.id
    assert f"edit #{job.id} is ready" in delivered.content
    assert delivered.pinged_user_ids == [world.member.user.id]
    assert delivered.attachments[0].data == (sim.results.default_path.read_bytes())

    # Exactly one delivery anywhere: one message with a file, in the original thread.
    assert [t.id for t in emu.threads(world.channel)] == [thread.id]
    with_files = [
        m for channel in (world.channel, thread) for m in emu.messages(channel) if m.attachments
    ]
    assert [m.id for m in with_files] == [delivered.id]
    assert [m.id for m in emu.messages(thread) if "is ready" in m.content] == [delivered.id]

    # The status message was edited to its final state, not posted again.
    [status] = emu.messages(world.channel)
    assert status.id == job.status_message_id
    await emu.wait_for(lambda: "**Done**" in status.content, description="Done status")
    assert status.edited_timestamp is not None
    assert sim.create_attempts == 1


async def test_the_bot_stops_promptly_when_its_tracker_was_just_woken(stack: Stack) -> None:
    """A wake-up racing the shutdown must not swallow the cancel (a restart would hang)."""
    bot = await stack.start_bot()
    assert bot.services is not None
    bot.services.tracker.wake()  # as a callback or a new job would, right before SIGTERM
    await stack.stop_bot()  # the harness fails this if it takes longer than its limit
    bot = await stack.start_bot()
    assert bot.is_ready()


async def test_a_prompt_form_left_open_across_a_restart_is_answered(stack: Stack) -> None:
    """The form lives in the old process: the member must hear back, not "interaction failed"."""
    emu, sim, world = stack.emu, stack.sim, stack.world
    await stack.start_bot()
    clip = stack.clip()
    post = emu.post_user_message(world.channel.id, world.member.user.id, "", attachments=[clip])
    menu = await emu.send_message_command(
        world.guild, world.channel, world.member, "Edit with Kling", post
    )
    await emu.wait_for_ack(menu)
    assert menu.modal is not None
    await stack.stop_bot()
    bot = await stack.start_bot()
    # Discord's 3 s run from when Discord receives the submit; the bot's share may be far
    # less, so the answer must not wait for anything.
    emu.ack_window = 1.0

    submit = await emu.submit_modal(menu, {text_input_id(menu): "make it snow"})
    answer = await ephemeral_answer(stack, submit)
    assert "before the bot restarted" in answer.content and "again" in answer.content
    assert bot.services is not None
    assert await bot.services.jobs.search(world.guild.id) == []
    assert sim.create_attempts == 0


MIB = 1024 * 1024


async def test_a_delivery_resumed_at_start_waits_for_the_servers_upload_limit(
    stack: Stack, tmp_path: Path
) -> None:
    """At start the guild cache is empty until the gateway fills it: a delivery resumed
    before then must not take the unboosted 10 MiB limit for a boosted server's."""
    emu, sim, world = stack.emu, stack.sim, stack.world
    emu.set_premium_tier(world.guild.id, 2)  # 50 MiB uploads
    result = pad_file(tmp_path / "big.mp4", 15 * MIB, source=make_mp4(tmp_path / "r.mp4", 3))
    sim.script_next_task(TaskScript(result_path=result, processing_s=1))
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    await ephemeral_answer(stack, ix)
    thread = await emu.wait_for_thread(world.channel)
    first = await emu.wait_for_message(thread, lambda m: bool(m.attachments))
    await stack.stop_bot()
    # Queued for posting again, exactly as `/kling-admin jobs redeliver` queues it.
    settings = stack.settings()
    db = await Database.open(settings.database, schema=settings.database_schema)
    try:
        [job] = await JobRepository(db).search(world.guild.id)
        now = time.time()
        await JobRepository(db).transition(
            job.id, JobState.ARCHIVED, expected={JobState.DELIVERED}, now=now,
            next_delivery_at=now, delivery_attempts=0,
        )
    finally:
        await db.close()

    await stack.start_bot()

    again = await emu.wait_for_message(thread, lambda m: m.id != first.id and "ready" in m.content)
    assert [a.size for a in again.attachments] == [15 * MIB], again.content  # not a link
