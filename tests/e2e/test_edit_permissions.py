"""/edit in channels where the bot lacks a permission: say so up front, degrade gracefully.

Permissions are taken away the way a server admin would: a channel overwrite on the bot's
managed role. The emulator resolves overwrites both for the `app_permissions` it puts in
every interaction and for each REST call the bot makes.
"""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from sandbox.discord_emulator.permissions import Permissions
from storage.models import JobState, LedgerKind
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer, ledger, public_messages


def deny_bot(stack: Stack, permission: Permissions) -> None:
    role = stack.emu.bot_role(stack.world.guild.id, stack.world.app)
    stack.emu.set_overwrite(stack.world.channel.id, role.id, deny=int(permission))


async def only_job(stack: Stack) -> JobState:
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()  # a post is recorded right after it is made
    [job] = await stack.bot.services.jobs.search(stack.world.guild.id)
    return job.state


async def test_without_thread_permission_updates_and_result_stay_in_the_channel(
    stack: Stack,
) -> None:
    deny_bot(stack, Permissions.CREATE_PUBLIC_THREADS)
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})

    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content
    assert "Create Public Threads" in reply.content and "this channel" in reply.content
    channel = stack.world.channel
    delivered = await stack.emu.wait_for_message(channel, lambda m: bool(m.attachments))
    assert delivered.pinged_user_ids == [stack.world.member.user.id]
    assert f"<#{channel.id}>" in reply.content  # "Follow it in #general"
    status = stack.emu.messages(channel)[0]
    await stack.emu.wait_for(lambda: "**Done**" in status.content, description="Done status")
    assert status.edits >= 1
    assert stack.emu.threads(channel) == []
    assert await only_job(stack) is JobState.DELIVERED


async def test_without_attach_files_the_result_arrives_as_a_working_link(
    stack: Stack,
) -> None:
    deny_bot(stack, Permissions.ATTACH_FILES)
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})

    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content and "Attach Files" in reply.content
    assert "link" in reply.content
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    delivered = await stack.emu.wait_for_message(thread, lambda m: "is ready" in m.content)
    assert delivered.attachments == []
    assert "Attach Files" in delivered.content and "Too large" not in delivered.content
    assert "the link works until <t:" in delivered.content
    link = next(w for w in delivered.content.split() if w.startswith(stack.public_base_url))
    async with aiohttp.ClientSession() as session:
        async with session.get(link) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp4"
            served_by_bot = await response.read()
        [task] = stack.sim.tasks.values()
        assert task.result_url
        async with session.get(task.result_url) as response:
            served_by_provider = await response.read()
    assert hashlib.sha256(served_by_bot).digest() == hashlib.sha256(served_by_provider).digest()
    assert await only_job(stack) is JobState.DELIVERED


async def test_without_thread_posting_the_result_is_posted_in_the_channel(
    stack: Stack,
) -> None:
    # The bot may open a thread but not write in it (a common server setup).
    deny_bot(stack, Permissions.SEND_MESSAGES_IN_THREADS)
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})
    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content and "Send Messages in Threads" in reply.content

    channel = stack.world.channel
    delivered = await stack.emu.wait_for_message(channel, lambda m: bool(m.attachments))
    assert delivered.pinged_user_ids == [stack.world.member.user.id]
    assert "is ready" in delivered.content
    assert await only_job(stack) is JobState.DELIVERED


@pytest.mark.parametrize(
    ("denied", "named"),
    [
        (Permissions.SEND_MESSAGES, "Send Messages"),
        # Slash commands reach the bot even where it cannot see the channel, and Discord's
        # app_permissions then still shows Send Messages (no implicit denial in that bit
        # set); every post there would answer 50001 Missing Access.
        (Permissions.VIEW_CHANNEL, "View Channel"),
    ],
)
async def test_where_the_bot_cannot_post_the_edit_is_refused_before_anything_is_charged(
    stack: Stack, denied: Permissions, named: str
) -> None:
    deny_bot(stack, denied)
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})

    reply = await ephemeral_answer(stack, ix)
    assert reply.content.startswith("❌")
    assert named in reply.content and "Nothing was charged" in reply.content
    assert public_messages(stack) == []
    assert await ledger(stack) == []
    assert stack.sim.create_attempts == 0
    assert stack.emu.downloads == []  # refused before even fetching the clip


async def test_every_command_is_offered_only_in_servers_that_added_the_bot(
    stack: Stack,
) -> None:
    await stack.start_bot()

    synced = stack.world.app.guild_commands[stack.world.guild.id]

    assert synced
    for command in synced:
        assert command["integration_types"] == [0], command["name"]  # guild installs only
        assert command["contexts"] == [0], command["name"]  # in servers, never in DMs


async def test_an_edit_through_a_members_own_install_is_refused_before_any_work(
    stack: Stack,
) -> None:
    # As if the bot offered itself to user installs too: its own check still refuses.
    stack.emu.enforce_command_permissions = False
    await stack.start_bot()
    ix = await stack.emu.send_slash_command(
        stack.world.guild, stack.world.channel, stack.world.member, "edit",
        {"prompt": "make it rain", "video": stack.clip()}, installed_by="user",
    )

    reply = await ephemeral_answer(stack, ix)
    assert "added to the server" in reply.content
    assert await ledger(stack) == [] and stack.emu.downloads == []
    assert stack.sim.create_attempts == 0


async def test_when_the_status_message_cannot_be_posted_nothing_is_submitted_or_charged(
    stack: Stack,
) -> None:
    # The bot lost access between the command's check and its post (a moderator changed
    # the channel): the edit could not be delivered there either.
    await stack.start_bot()
    stack.emu.fail_next("POST", "/channels/{channel_id}/messages", 403, 50001, "Missing Access")
    ix = await stack.edit({"prompt": "make it rain", "video": stack.clip()})

    reply = await ephemeral_answer(stack, ix)
    assert reply.content.startswith("❌") and "Nothing was charged" in reply.content
    assert stack.sim.create_attempts == 0
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == [
        (LedgerKind.RESERVE, 4), (LedgerKind.RELEASE, -4),
    ]
    assert await only_job(stack) is JobState.FAILED
