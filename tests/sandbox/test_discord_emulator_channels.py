"""Channel kinds and thread states answer as Discord's API does (channel resource docs)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator, Permissions
from sandbox.discord_emulator.commands import slash_command
from sandbox.discord_emulator.models import ChannelType
from sandbox.discord_emulator.testing import World
from tests.sandbox.wire import AUTH


async def _call(
    http: aiohttp.ClientSession, emu: DiscordEmulator, method: str, path: str, body: Any
) -> tuple[int, Any]:
    async with http.request(method, emu.api_base + path, json=body, headers=AUTH) as resp:
        return resp.status, await resp.json()


async def _post(
    http: aiohttp.ClientSession, emu: DiscordEmulator, channel_id: int
) -> tuple[int, Any]:
    return await _call(http, emu, "POST", f"/channels/{channel_id}/messages", {"content": "hi"})


async def _thread_from(
    http: aiohttp.ClientSession, emu: DiscordEmulator, channel_id: int, message_id: str
) -> tuple[int, Any]:
    path = f"/channels/{channel_id}/messages/{message_id}/threads"
    return await _call(http, emu, "POST", path, {"name": "Edit #1"})


async def test_a_forum_holds_posts_not_messages_and_a_post_takes_no_sub_thread(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    forum = emu.create_text_channel(world.guild.id, "clips", kind=ChannelType.GUILD_FORUM)
    post = emu.create_forum_post(forum, "my clip", world.member)

    status, body = await _post(http, emu, forum.id)
    assert (status, body["code"]) == (400, 50008)
    status, message = await _post(http, emu, post.id)
    assert status == 200
    status, body = await _thread_from(http, emu, post.id, message["id"])
    assert (status, body["code"]) == (400, 50024)


@pytest.mark.parametrize("kind", [ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE])
async def test_a_voice_channels_text_chat_takes_messages_but_no_threads(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession, kind: ChannelType
) -> None:
    voice = emu.create_text_channel(world.guild.id, "hangout", kind=kind)

    status, message = await _post(http, emu, voice.id)

    assert status == 200
    status, body = await _thread_from(http, emu, voice.id, message["id"])
    assert (status, body["code"]) == (400, 50024)


async def test_an_announcement_channel_takes_messages_and_threads(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    news = emu.create_text_channel(world.guild.id, "news", kind=ChannelType.GUILD_ANNOUNCEMENT)

    status, message = await _post(http, emu, news.id)

    assert status == 200
    status, _ = await _thread_from(http, emu, news.id, message["id"])
    assert status == 201


async def test_a_members_own_thread_takes_posts_and_a_public_one_is_announced(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    """Topics → Threads: a thread started without a message leaves a "thread created"
    (type 18) message in its channel when public; a member's thread takes the bot's posts."""
    thread = emu.create_thread(world.channel, "my clips", world.member)
    hidden = emu.create_thread(world.channel, "just me", world.member, private=True)

    [notice] = emu.messages(world.channel)
    assert notice.type == 18 and notice.message_reference == {
        "channel_id": str(thread.id), "guild_id": str(world.guild.id)
    }
    assert (thread.type, thread.parent_id, thread.owner_id) == (
        ChannelType.PUBLIC_THREAD, world.channel.id, world.member.user.id
    )
    assert hidden.type == ChannelType.PRIVATE_THREAD
    assert (await _post(http, emu, thread.id))[0] == 200


@pytest.mark.parametrize(
    ("change", "expected"),
    [("archive", (400, 50083)), ("lock", (400, 50083)), ("delete", (404, 10003))],
)
async def test_a_thread_that_was_archived_locked_or_deleted_refuses_posts(
    emu: DiscordEmulator,
    world: World,
    http: aiohttp.ClientSession,
    change: str,
    expected: tuple[int, int],
) -> None:
    status, message = await _post(http, emu, world.channel.id)
    status, thread = await _thread_from(http, emu, world.channel.id, message["id"])
    assert (await _post(http, emu, int(thread["id"])))[0] == 200

    if change == "delete":
        emu.delete_channel(int(thread["id"]))
    else:
        emu.archive_thread(int(thread["id"]), locked=change == "lock")
    status, body = await _post(http, emu, int(thread["id"]))

    assert (status, body["code"]) == expected


async def test_app_permissions_are_the_raw_bits_while_posting_needs_view_channel(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    commands = f"/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    status, _ = await _call(
        http, emu, "PUT", commands, [{"name": "edit", "description": "Edit", "type": 1}]
    )
    assert status == 200
    role = emu.bot_role(world.guild.id, world.app)
    emu.set_overwrite(world.channel.id, role.id, deny=int(Permissions.VIEW_CHANNEL))

    ix = slash_command(
        emu, world.app, world.guild, world.channel, world.member.user.id, "edit", {}, [], "en-US"
    )

    app_permissions = int(ix.payload["app_permissions"])
    assert app_permissions & Permissions.SEND_MESSAGES
    assert not app_permissions & Permissions.VIEW_CHANNEL
    status, body = await _post(http, emu, world.channel.id)
    assert (status, body["code"]) == (403, 50001)
