"""The setup guide the bot posts when it joins a server: in the system channel where it may
post, nowhere else, once per server (not on a reconnect's GUILD_CREATE), also for a server
that added the bot while it was offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.discord_emulator.models import Channel, Guild
from sandbox.discord_emulator.permissions import Permissions
from tests.e2e.harness import Stack


def new_server(stack: Stack, name: str, *, system_channel: bool = True) -> tuple[Guild, Channel]:
    """A server the bot is not in yet, with #welcome (its system channel, if asked) and
    #general."""
    guild = stack.emu.create_guild(name, add_bots=False)
    welcome = stack.emu.create_text_channel(guild.id, "welcome")
    stack.emu.create_text_channel(guild.id, "general")
    if system_channel:
        stack.emu.set_system_channel(guild.id, welcome.id)
    return guild, welcome


def join_denied(stack: Stack, name: str, denied: Permissions) -> tuple[Guild, Channel]:
    """The bot joins a server whose system channel denies it `denied` (through @everyone's
    overwrite there: the bot may also post through @everyone's permissions)."""
    guild, welcome = new_server(stack, name)
    stack.emu.set_overwrite(welcome.id, guild.id, deny=int(denied))
    stack.emu.add_bot(guild.id, stack.world.app)
    return guild, welcome


def everything_posted_in(stack: Stack, guild: Guild) -> list[str]:
    return [m.content for c in guild.channel_ids for m in stack.emu.messages(c)]


async def join_and_wait_for_guide(stack: Stack, name: str) -> tuple[Guild, str]:
    """The bot joins a server that lets it post: its guide is the barrier that shows every
    earlier GUILD_CREATE was handled (discord.py handles them in order, and a refused
    guide awaits nothing)."""
    guild, welcome = new_server(stack, name)
    stack.emu.add_bot(guild.id, stack.world.app)
    guide = await stack.emu.wait_for_message(welcome, lambda m: True)
    return guild, guide.content


async def test_the_guide_is_posted_in_the_system_channel_on_joining(stack: Stack) -> None:
    await stack.start_bot(DEFAULT_COOLDOWN_SECONDS="30")  # the harness turns it off
    guild, guide = await join_and_wait_for_guide(stack, "New Server")
    assert guide == (
        "👋 **Kling video edits are ready on this server.**\n"
        "- **Who can edit:** every member, with `/edit` in any channel where I can post: a "
        "clip (3–10 s; longer clips are cut to 10 s from `start`), a prompt and up to 4 "
        "reference images.\n"
        "- **Default limits:** 60 billed seconds per member a day and 600 a month, 2 edits "
        "at once, 30 s between edits, 6000 s a month for the whole server.\n"
        "- **Moderators** (Manage Server): `/kling-admin limits show` shows the limits in "
        "force, `/kling-admin limits set` changes them, `/kling-admin channels allow` keeps "
        "`/edit` to chosen channels; for everything else, ask whoever runs this bot for the "
        "moderator guide."
    )
    assert everything_posted_in(stack, guild) == [guide]  # nothing in #general


async def test_the_guide_links_the_operators_moderator_guide(stack: Stack) -> None:
    await stack.start_bot(MODERATOR_GUIDE_URL="https://example.org/kling#moderator-guide")
    _, guide = await join_and_wait_for_guide(stack, "New Server")
    assert guide.endswith(
        "for everything else, the moderator guide: <https://example.org/kling#moderator-guide>."
    )


async def test_no_guide_where_the_bot_may_not_post_or_there_is_no_system_channel(
    stack: Stack,
) -> None:
    await stack.start_bot()
    mute, _ = join_denied(stack, "Muted", Permissions.SEND_MESSAGES)
    hidden, _ = join_denied(stack, "Hidden", Permissions.VIEW_CHANNEL)
    unset, _ = new_server(stack, "No system channel", system_channel=False)
    stack.emu.add_bot(unset.id, stack.world.app)

    await join_and_wait_for_guide(stack, "Barrier")
    for guild in (mute, hidden, unset):
        assert everything_posted_in(stack, guild) == [], guild.name
    assert stack.emu.messages(stack.world.channel) == []  # nor anywhere else


async def test_a_reconnect_does_not_post_the_guide_again(stack: Stack) -> None:
    bot = await stack.start_bot()
    joined, _ = await join_and_wait_for_guide(stack, "New Server")
    available = bot.wait_for("guild_available", check=lambda g: g.id == joined.id, timeout=10)
    # After shard_ready a new GUILD_CREATE is a join again (discord.py, _delay_shard_ready).
    reconnected = bot.wait_for("shard_ready", timeout=10)
    await stack.emu.disconnect_gateway(4000, invalidate=True)  # READY and GUILD_CREATEs again
    await available
    await reconnected
    await join_and_wait_for_guide(stack, "Barrier")
    assert len(everything_posted_in(stack, joined)) == 1


async def test_a_server_that_added_the_bot_while_it_was_offline_gets_the_guide_once(
    stack: Stack,
) -> None:
    guild, welcome = new_server(stack, "Added Overnight")
    stack.emu.add_bot(guild.id, stack.world.app)  # no bot connected: nobody hears a join

    await stack.start_bot()
    guide = await stack.emu.wait_for_message(welcome, lambda m: True)
    assert guide.content.startswith("👋 **Kling video edits are ready on this server.**")

    # At the next start the server is "available" again, and its guide is on record.
    await stack.stop_bot()
    await stack.start_bot()
    await join_and_wait_for_guide(stack, "Barrier")
    assert everything_posted_in(stack, guild) == [guide.content]


async def test_a_server_the_bot_joined_weeks_ago_gets_no_guide_at_start(stack: Stack) -> None:
    guild, _ = new_server(stack, "Old Friends")
    weeks_ago = datetime.now(UTC) - timedelta(days=30)
    stack.emu.add_bot(guild.id, stack.world.app, joined_at=weeks_ago.isoformat())

    await stack.start_bot()
    await join_and_wait_for_guide(stack, "Barrier")
    assert everything_posted_in(stack, guild) == []


async def test_a_guide_the_bot_could_not_post_on_joining_comes_at_its_next_start(
    stack: Stack,
) -> None:
    await stack.start_bot()
    guild, welcome = join_denied(stack, "Muted At First", Permissions.SEND_MESSAGES)
    await join_and_wait_for_guide(stack, "Barrier")
    assert everything_posted_in(stack, guild) == []

    stack.emu.set_overwrite(welcome.id, guild.id, deny=0)  # a moderator lets it post
    await stack.stop_bot()
    await stack.start_bot()
    guide = await stack.emu.wait_for_message(welcome, lambda m: True)
    assert everything_posted_in(stack, guild) == [guide.content]
