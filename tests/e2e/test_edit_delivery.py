"""/edit results that don't fit Discord, progress members watch, and a burst of commands."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import aiohttp
import pytest

from sandbox.discord_emulator.permissions import Permissions
from sandbox.evolink_sim import TaskScript
from sandbox.media_samples import make_mp4, pad_file
from storage.models import Job, JobState, MediaRole
from tests.e2e.admin_view import add_moderator, admin
from tests.e2e.harness import THREAD_CLOSINGS, Stack, close_thread
from tests.e2e.user_view import ephemeral_answer

MIB = 1024 * 1024
RETENTION_S = 7 * 86400  # RESULT_RETENTION_SECONDS default


async def _download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, (url, response.status)
        return await response.read()


async def _served_by_provider(stack: Stack) -> bytes:
    """The bytes behind the simulator's result link for the guild's only job."""
    assert stack.bot is not None and stack.bot.services is not None
    [job] = await stack.bot.services.jobs.search(stack.world.guild.id)
    task = stack.sim.tasks[job.provider_task_id or ""]
    assert task.result_url
    return await _download(task.result_url)


def _link_in(content: str, base: str) -> str:
    match = re.search(re.escape(base) + r"/\S+", content)
    assert match, content
    return match.group(0)


async def _assert_link_delivery(stack: Stack, started: float) -> str:
    """The result arrives in the thread as a working link that says how long it lives."""
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    delivered = await stack.emu.wait_for_message(thread, lambda m: "is ready" in m.content)
    assert delivered.attachments == []
    assert delivered.pinged_user_ids == [stack.world.member.user.id]
    link = _link_in(delivered.content, stack.public_base_url)
    body = await _download(link)
    assert hashlib.sha256(body).digest() == hashlib.sha256(
        await _served_by_provider(stack)
    ).digest()
    # "the link works until <t:…:f>": a Discord timestamp about RESULT_RETENTION from now.
    [expiry] = {int(t) for t in re.findall(r"<t:(\d+):[fR]>", delivered.content)}
    assert started + RETENTION_S - 60 <= expiry <= time.time() + RETENTION_S + 60
    status = stack.emu.messages(stack.world.channel)[0]
    await stack.emu.wait_for(lambda: "**Done**" in status.content, description="Done status")
    return delivered.content


async def test_result_over_the_servers_upload_limit_is_linked_not_attached(
    stack: Stack, tmp_path: Path
) -> None:
    # An unboosted server: bots may upload 10 MiB. The provider returns 11 MiB.
    result = pad_file(tmp_path / "big.mp4", 11 * MIB, source=make_mp4(tmp_path / "r.mp4", 3))
    stack.sim.script_next_task(TaskScript(result_path=result, processing_s=20))
    await stack.start_bot()
    started = time.time()
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    await ephemeral_answer(stack, ix)

    content = await _assert_link_delivery(stack, started)
    assert "Too large to attach" in content
    # The bot knew the limit: it never pushed 11 MiB at Discord to be refused.
    assert stack.emu.rest_calls(status=413) == []
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()  # the post is recorded right after it is made
    [job] = await stack.bot.services.jobs.search(stack.world.guild.id)
    assert job.state is JobState.DELIVERED


async def test_result_refused_by_discord_as_too_large_falls_back_to_a_link(
    stack: Stack,
) -> None:
    # A limit discord.py cannot know in advance (it guesses from the boost tier).
    stack.emu.set_upload_limit(stack.world.guild.id, 1000)
    await stack.start_bot()
    started = time.time()
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    await ephemeral_answer(stack, ix)

    content = await _assert_link_delivery(stack, started)
    assert "Too large to attach" in content
    assert len(stack.emu.rest_calls("POST", status=413)) == 1


async def test_result_refused_by_a_proxy_with_a_bare_413_falls_back_to_a_link(
    stack: Stack,
) -> None:
    await stack.start_bot()
    # No Discord error code: a proxy in front of the API refused the upload's size.
    stack.emu.proxy_body_limit = 100  # any upload (the limit counts files only)
    started = time.time()
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    await ephemeral_answer(stack, ix)

    content = await _assert_link_delivery(stack, started)
    assert "Too large to attach" in content


# --- progress -----------------------------------------------------------------------------

async def test_status_message_shows_progress_and_elapsed_time_in_few_edits(
    stack: Stack,
) -> None:
    interval = 1.0
    bot = await stack.start_bot(STATUS_EDIT_INTERVAL_SECONDS=str(interval))
    assert bot.notifier is not None
    progress_updates: list[int] = []
    forward = bot.notifier.progress

    async def spy(job: Job) -> None:  # counts what the engine reports, changes nothing
        progress_updates.append(job.progress)
        await forward(job)

    bot.notifier.progress = spy  # type: ignore[method-assign]
    # 400 provider seconds at time_scale 200: about 2 real seconds of rising progress.
    stack.sim.script_next_task(TaskScript(processing_s=400, estimated_time=400))
    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip()})
    await ephemeral_answer(stack, ix)
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    status = stack.emu.messages(stack.world.channel)[0]
    posted = time.monotonic()
    await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    await stack.emu.wait_for(lambda: "**Done**" in status.content, description="Done status")
    watched = time.monotonic() - posted

    revisions = [revision.content for revision in status.history]
    editing = [text for text in revisions if "**Editing**" in text]
    assert editing, revisions
    assert any(re.search(r"█+░*\s\d+%", text) for text in editing), editing
    assert all(re.search(r"Elapsed \d+s", text) for text in editing), editing
    assert any(re.search(r"ETA ~\d", text) for text in editing), editing  # or "any moment"
    assert "**Done**" in revisions[-1] and "████████████ 100%" in revisions[-1]
    # Coalesced: far fewer edits than progress changes, about one per interval at most.
    edits = len(revisions) - 1
    assert len(set(progress_updates)) > 2 * edits, (progress_updates, revisions)
    assert edits <= watched / interval + 3, (edits, watched)
    # The channel's message allowance never ran dry: other members could always post.
    remaining = [
        int(call.ratelimit_headers["X-RateLimit-Remaining"])
        for call in stack.emu.rest_calls()
        if call.path.startswith(f"/channels/{stack.world.channel.id}/messages")
        and "X-RateLimit-Remaining" in call.ratelimit_headers
    ]
    assert remaining and min(remaining) > 0, remaining
    assert stack.emu.rate_limit_hits == []


# --- where the result goes when its thread is gone ----------------------------------------

@pytest.mark.parametrize("closed", THREAD_CLOSINGS)
async def test_a_result_whose_thread_was_closed_lands_in_the_channel(
    stack: Stack, closed: str
) -> None:
    # Discord answers a post there with a final 4xx (10003 Unknown Channel, 50083 Thread is
    # archived, 50001 Missing Access): retrying the same place for an hour cannot help,
    # the channel can.
    stack.sim.script_next_task(TaskScript(processing_s=100_000, estimated_time=100_000))
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    assert "started" in (await ephemeral_answer(stack, ix)).content
    assert stack.bot is not None
    [job] = await stack.bot.services.jobs.search(stack.world.guild.id)
    assert job.thread_id is not None
    close_thread(stack.emu, job.thread_id, closed)

    stack.sim.complete_now(job.provider_task_id or "")

    channel = stack.world.channel
    delivered = await stack.emu.wait_for_message(channel, lambda m: bool(m.attachments))
    assert delivered.pinged_user_ids == [stack.world.member.user.id]
    await stack.bot.services.tracker.idle()
    [job] = await stack.bot.services.jobs.search(stack.world.guild.id)
    assert job.state is JobState.DELIVERED and job.delivered_message_id == delivered.id


async def test_a_result_with_nowhere_to_go_is_kept_and_moderators_are_told(
    stack: Stack,
) -> None:
    emu, guild = stack.emu, stack.world.guild
    log = emu.create_text_channel(guild.id, "mod-log")
    stack.sim.script_next_task(TaskScript(processing_s=100_000, estimated_time=100_000))
    await stack.start_bot()
    await admin(stack, add_moderator(stack), "log-channel set", {"channel": log})
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    assert "started" in (await ephemeral_answer(stack, ix)).content
    assert stack.bot is not None
    [job] = await stack.bot.services.jobs.search(guild.id)
    assert job.thread_id is not None
    emu.delete_channel(job.thread_id)
    emu.set_overwrite(
        stack.world.channel.id, emu.bot_role(guild.id, stack.world.app).id,
        deny=int(Permissions.SEND_MESSAGES),
    )

    stack.sim.complete_now(job.provider_task_id or "")

    alert = await emu.wait_for_message(log, lambda m: f"Edit #{job.id}" in m.content)
    assert f"/kling-admin jobs redeliver job:{job.id}" in alert.content
    await stack.bot.services.tracker.idle()
    [job] = await stack.bot.services.jobs.search(guild.id)
    assert job.state is JobState.FAILED and job.error_code == "delivery_failed"
    assert await stack.bot.services.media.for_job(job.id, MediaRole.RESULT)  # still kept
