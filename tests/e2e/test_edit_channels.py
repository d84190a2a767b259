"""/edit where Discord lets members run it: forum posts, members' threads, voice and stage
text chats.

Moderators allow them like any channel; a thread (a member's or a forum post) follows its
parent channel's rule unless it has one of its own. A result whose thread was closed goes to
the parent channel, or to the moderators when the parent is a forum (which takes posts, not
messages).
"""

from __future__ import annotations

import pytest

from sandbox.discord_emulator.models import Channel, ChannelType
from sandbox.evolink_sim import TaskScript
from storage.models import JobState
from tests.e2e.admin_view import add_moderator, admin, assert_refused, jobs, try_edit
from tests.e2e.harness import THREAD_CLOSINGS, Stack, close_thread

# Finished by `complete_now` once the edit is announced: delivery, not timing, is tested.
SLOW = TaskScript(processing_s=100_000, estimated_time=100_000)


async def _delivered_in(stack: Stack, place: Channel) -> None:
    assert stack.bot is not None
    [job] = await jobs(stack)
    stack.sim.complete_now(job.provider_task_id or "")
    delivered = await stack.emu.wait_for_message(place, lambda m: bool(m.attachments))
    assert delivered.pinged_user_ids == [stack.world.member.user.id]
    await stack.bot.services.tracker.idle()
    [job] = await jobs(stack)
    assert job.state is JobState.DELIVERED


@pytest.mark.parametrize("kind", [ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE])
async def test_edit_in_an_allowed_voice_text_chat_is_delivered_there(
    stack: Stack, kind: ChannelType
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    voice = emu.create_text_channel(guild.id, "hangout", kind=kind)
    stack.sim.set_default_script(SLOW)
    await stack.start_bot()
    await admin(stack, mod, "channels allow", {"channel": voice})

    answer = await try_edit(stack, channel=voice)

    assert "started" in answer, answer
    await _delivered_in(stack, voice)


async def test_edit_in_a_post_of_an_allowed_forum_is_delivered_in_the_post(
    stack: Stack,
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    forum = emu.create_text_channel(guild.id, "clips", kind=ChannelType.GUILD_FORUM)
    post = emu.create_forum_post(forum, "my holiday clip", stack.world.member)
    stack.sim.set_default_script(SLOW)
    await stack.start_bot()
    await admin(stack, mod, "channels allow", {"channel": forum})
    assert_refused(await try_edit(stack), "not allowed in this channel")  # #general is not

    answer = await try_edit(stack, channel=post)

    assert "started" in answer, answer
    await _delivered_in(stack, post)


async def test_a_post_with_its_own_rule_overrides_its_forums(stack: Stack) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    forum = emu.create_text_channel(guild.id, "clips", kind=ChannelType.GUILD_FORUM)
    post = emu.create_forum_post(forum, "no edits here please", stack.world.member)
    await stack.start_bot()
    await admin(stack, mod, "channels allow", {"channel": forum})
    await admin(stack, mod, "channels deny", {"channel": post})

    assert_refused(await try_edit(stack, channel=post), "not allowed in this channel")


@pytest.mark.parametrize("closed", THREAD_CLOSINGS)
async def test_a_result_whose_members_thread_was_closed_lands_in_its_channel(
    stack: Stack, closed: str
) -> None:
    emu, world = stack.emu, stack.world
    thread = emu.create_thread(world.channel, "my clips", world.member)
    stack.sim.set_default_script(SLOW)
    await stack.start_bot()
    assert "started" in await try_edit(stack, channel=thread)
    [job] = await jobs(stack)
    assert job.thread_id == thread.id  # the member's thread holds the updates

    close_thread(emu, thread.id, closed)

    await _delivered_in(stack, world.channel)


@pytest.mark.parametrize("closed", THREAD_CLOSINGS)
async def test_a_result_whose_forum_post_was_closed_goes_to_the_moderators(
    stack: Stack, closed: str
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    log = emu.create_text_channel(guild.id, "mod-log")
    forum = emu.create_text_channel(guild.id, "clips", kind=ChannelType.GUILD_FORUM)
    post = emu.create_forum_post(forum, "my holiday clip", stack.world.member)
    stack.sim.set_default_script(SLOW)
    await stack.start_bot()
    await admin(stack, mod, "channels allow", {"channel": forum})
    await admin(stack, mod, "log-channel set", {"channel": log})
    assert "started" in await try_edit(stack, channel=post)
    [job] = await jobs(stack)
    close_thread(emu, post.id, closed)

    stack.sim.complete_now(job.provider_task_id or "")

    alert = await emu.wait_for_message(log, lambda m: f"Edit #{job.id}" in m.content)
    assert f"/kling-admin jobs redeliver job:{job.id}" in alert.content
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()
    [job] = await jobs(stack)
    assert job.state is JobState.FAILED and job.error_code == "delivery_failed"
    # A forum takes no message of its own (50008): the bot does not try to post in it.
    assert not [c for c in emu.rest_calls("POST") if c.path == f"/channels/{forum.id}/messages"]
