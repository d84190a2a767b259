"""Moderators and members around /kling-admin, as the admin e2e tests see them.

`admin()` runs one subcommand and returns its answer, already checked to be what every
admin answer must be: acknowledged in time, ephemeral, mentioning nobody. `try_edit()` and
`edit_delivered()` are the member's /edit that follows, which is where a change shows.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from typing import Any

from sandbox.discord_emulator.interactions import InteractionRecord
from sandbox.discord_emulator.models import Member, Message
from sandbox.discord_emulator.permissions import Permissions
from sandbox.media_samples import make_mp4_bytes
from storage.models import Job
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer

GROUP = "kling-admin"
MODERATOR_ONLY = "Only moderators can use /kling-admin"
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")


@functools.cache
def _clip_bytes() -> bytes:
    return make_mp4_bytes(4.0)  # billed as 4 s


def add_moderator(stack: Stack, name: str = "mod") -> Member:
    """A member with Manage Server (create before the bot starts, so its cache has the role)."""
    return stack.emu.create_member(
        stack.world.guild.id, name, permissions=int(Permissions.MANAGE_GUILD)
    )


def assert_quiet(message: Message) -> None:
    """Ephemeral and mentioning nobody: no user, role or @everyone is even parsed."""
    assert message.ephemeral, message.content
    assert message.mentions == [] and message.mention_roles == [], message.content
    assert not message.mention_everyone and message.pinged_user_ids == [], message.content


async def admin_interaction(
    stack: Stack, actor: Any, path: str, options: dict[str, Any] | None = None
) -> tuple[InteractionRecord, Message]:
    world = stack.world
    ix = await stack.emu.send_slash_command(
        world.guild, world.channel, actor, f"{GROUP} {path}", options or {}
    )
    reply = await ephemeral_answer(stack, ix)
    assert_quiet(reply)
    assert [m for m in ix.responses if not m.ephemeral] == []
    return ix, reply


async def admin(
    stack: Stack, actor: Any, path: str, options: dict[str, Any] | None = None
) -> str:
    """Run `/kling-admin <path>` as `actor`; the ephemeral, ping-free answer's text."""
    _, reply = await admin_interaction(stack, actor, path, options)
    return reply.content


async def try_edit(stack: Stack, member: Any = None, channel: Any = None) -> str:
    """A member's /edit with a 4 s clip; the text of its ephemeral answer."""
    world = stack.world
    clip = stack.emu.add_attachment("clip.mp4", _clip_bytes(), content_type="video/mp4")
    ix = await stack.emu.send_slash_command(
        world.guild, channel or world.channel, member or world.member, "edit",
        {"prompt": "make it snow", "video": clip},
    )
    return (await ephemeral_answer(stack, ix)).content


def assert_refused(answer: str, *fragments: str) -> None:
    assert answer.startswith("❌"), answer
    for fragment in fragments:
        assert fragment in answer, (fragment, answer)


async def edit_delivered(stack: Stack, member: Any = None, channel: Any = None) -> Message:
    """A /edit that must be accepted; waits for the video in its thread and returns it."""
    answer = await try_edit(stack, member, channel)
    assert answer.startswith("✅") and "started" in answer, answer
    match = _CHANNEL_MENTION.search(answer)
    assert match, answer
    thread_id = int(match.group(1))
    message = await stack.emu.wait_for_message(thread_id, lambda m: bool(m.attachments))
    assert stack.bot is not None
    await stack.bot.services.tracker.idle()  # the post is recorded right after it is made
    return message


async def jobs(stack: Stack) -> list[Job]:
    """Every job of the guild, newest first, straight from the bot's database."""
    assert stack.bot is not None and stack.bot.services is not None
    return await stack.bot.services.jobs.search(stack.world.guild.id)


async def audited(stack: Stack, moderator: Any) -> list[tuple[int, str]]:
    """`/kling-admin audit limit:50` as (actor id, action), oldest first.

    What fits is listed in the answer; a longer listing comes whole as an attached CSV,
    whose rows must agree with the lines shown.
    """
    _, reply = await admin_interaction(stack, moderator, "audit", {"limit": 50})
    if reply.content == "No admin actions yet.":
        assert reply.attachments == []
        return []
    shown = []
    for line in reply.content.splitlines():
        if line.startswith("-# "):
            continue
        match = re.fullmatch(r"<t:\d+:f> · <@(\d+)> · `([^`]+)`.*", line)
        assert match, line
        shown.append((int(match.group(1)), match.group(2)))
    if not reply.attachments:
        assert "did not fit" not in reply.content
        return shown[::-1]
    [listing] = reply.attachments
    rows = list(csv.DictReader(io.StringIO(listing.data.decode())))
    everything = [(int(row["actor_id"]), row["action"]) for row in rows]
    assert everything[: len(shown)] == shown and len(everything) > len(shown)
    assert f"all {len(everything)} are in the attached file" in reply.content
    return everything[::-1]


def actions_by(entries: list[tuple[int, str]], actor_id: int) -> list[str]:
    """The actions `actor_id` took, oldest first."""
    return [action for actor, action in entries if actor == actor_id]
