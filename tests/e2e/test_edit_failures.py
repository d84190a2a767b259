"""/edit when things go wrong, seen from Discord: refusals, provider failures, mentions.

Every test runs the real KlingBot against the Discord emulator and the EvoLink simulator
over loopback and asserts what a member would see (and what they would be billed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.evolink_sim import TaskScript
from sandbox.media_samples import make_gif, make_mp4_bytes, make_png
from storage.models import JobState, LedgerKind
from tests.e2e.harness import Stack, text_input_id
from tests.e2e.user_view import all_bot_messages, ephemeral_answer, ledger, pings, public_messages

MB = 1_000_000


# --- refusals -----------------------------------------------------------------------------

def _gif_as_video(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    gif = make_gif(tmp_path / "funny.gif", 64, 64)
    return {"video": stack.emu.add_attachment("funny.gif", gif, content_type="image/gif")}


def _png_as_video(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    png = make_png(tmp_path / "still.png", 640, 360)
    return {"video": stack.emu.add_attachment("still.png", png, content_type="image/png")}


def _too_short(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    return {"video": stack.clip("short.mp4", seconds=0.5)}  # under the bot's 1 s floor


def _both_sources(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    return {"video": stack.clip(), "video_url": "https://example.com/clip.mp4"}


def _no_source(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    return {}


def _negative_start(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    # Discord's client keeps `start` at 0 or more (min_value); a raw interaction need not.
    return {"video": stack.clip(), "start": -3}


def _http_link(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    return {"video_url": f"{stack.emu.base_url.replace('https', 'http')}/clip.mp4"}


def _link(url: str) -> Build:
    def build(stack: Stack, tmp_path: Path) -> dict[str, Any]:
        return {"video_url": url}

    return build


def _declared_too_big(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    # The emulator declares an attachment's real length, so the file really is > 100 MB:
    # a real mp4 header and zeros. The bot must refuse it from the declared size alone.
    data = make_mp4_bytes(4.0).ljust(100 * MB + 1, b"\0")
    return {"video": stack.emu.add_attachment("huge.mp4", data, content_type="video/mp4")}


def _tiny_image(stack: Stack, tmp_path: Path) -> dict[str, Any]:
    png = make_png(tmp_path / "tiny.png", 100, 100)
    return {
        "video": stack.clip(),
        "image1": stack.emu.add_attachment("tiny.png", png, content_type="image/png"),
    }


Build = Callable[[Stack, Path], dict[str, Any]]
OPTIONS = "\n**/edit options**\n- `prompt` (required): What should change in the clip"
# (test id, options builder, what the refusal must say, may the bot download anything?)
REFUSALS: list[tuple[str, Build, list[str], bool]] = [
    ("gif-as-video", _gif_as_video, ["GIF", "not a video", ".mp4 or .mov"], True),
    ("png-as-video", _png_as_video, ["PNG", "not a video", ".mp4 or .mov"], True),
    ("too-short", _too_short, ["0.5 s long", "at least 1 s", "longer clip"], True),
    ("video-and-link", _both_sources, ["exactly one clip", "not both", OPTIONS], False),
    ("no-video", _no_source, ["exactly one clip", "none was given", OPTIONS,
                              "- `video` or `video_url` (exactly one): The clip: .mp4 or .mov",
                              "- `start`: Second where the edit begins",
                              "- `image1`…`image4`: Optional reference image"], False),
    ("negative-start", _negative_start, ["`start` is the second of your clip", OPTIONS], False),
    ("http-link", _http_link, ["https://"], False),
    # Links yarl or the resolver cannot take: refused as typed, never "Something went wrong".
    ("unclosed-ipv6-link", _link("https://[::1/clip.mp4"), ["not a valid web address"], False),
    ("space-in-host-link", _link("https://exa mple.com/clip.mp4"), ["not a valid web address"],
     False),
    ("overlong-host-link", _link(f"https://{'a' * 3000}.com/clip.mp4"),
     ["not a valid web address"], False),
    ("bad-port-link", _link("https://example.com:99999/clip.mp4"), ["not a valid web address"],
     False),
    ("declared-over-100mb", _declared_too_big, ["100.1 MB", "limit is 100 MB"], False),
    ("tiny-reference-image", _tiny_image, ["Reference image 1", "100×100", "300 px"], True),
]


@pytest.mark.parametrize(
    ("build", "expected", "may_download"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
async def test_invalid_input_is_refused_privately_at_no_cost(
    stack: Stack, tmp_path: Path, build: Build, expected: list[str], may_download: bool
) -> None:
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it look like winter", **build(stack, tmp_path)})

    reply = await ephemeral_answer(stack, ix)
    assert reply.content.startswith("❌"), reply.content
    for fragment in expected:
        assert fragment in reply.content, (fragment, reply.content)
    # Nobody else saw anything, nothing was billed, the provider was never called.
    assert public_messages(stack) == []
    assert stack.emu.threads(stack.world.channel) == []
    assert await ledger(stack) == []
    assert stack.sim.create_attempts == 0
    if not may_download:  # refused from what Discord told us, before fetching a byte
        assert stack.emu.downloads == []


async def test_a_loop_of_refused_edits_is_told_to_wait_before_anything_is_downloaded(
    stack: Stack,
) -> None:
    await stack.start_bot(ATTEMPT_LIMIT="2")
    replies = []
    for attempt in range(3):
        ix = await stack.edit(
            {"prompt": "snow", "video": stack.clip(f"short-{attempt}.mp4", seconds=0.5)}
        )
        replies.append((await ephemeral_answer(stack, ix)).content)

    assert all("0.5 s long" in reply for reply in replies[:2]), replies
    assert replies[2].startswith("❌ You have had 2 edits refused in the last 10 minutes")
    assert "You can try again <t:" in replies[2]
    assert len(stack.emu.downloads) == 2  # the third attempt fetched nothing
    assert public_messages(stack) == [] and await ledger(stack) == []
    world = stack.world
    quota = await stack.emu.send_slash_command(world.guild, world.channel, world.member, "quota")
    shown = (await ephemeral_answer(stack, quota)).content
    assert "**Refused attempts:** 2 of 2 in the last 10 minutes · new edits wait until <t:" in (
        shown
    )


# --- mentions -----------------------------------------------------------------------------

async def test_mentions_in_the_prompt_never_ping_anyone(stack: Stack) -> None:
    emu, world = stack.emu, stack.world
    bob = emu.create_member(world.guild.id, "bob")
    crew = emu.create_role(world.guild.id, "crew", mentionable=True)
    await stack.start_bot()
    prompt = f"make it snow @everyone @here <@{bob.user.id}> <@!{bob.user.id}> <@&{crew.id}>"

    ix = await stack.edit({"prompt": prompt, "video": stack.clip()})
    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content
    thread = await emu.wait_for_thread(world.channel)
    await emu.wait_for_message(thread, lambda m: bool(m.attachments))

    status = emu.messages(world.channel)[0]
    assert "make it snow" in status.content and "everyone" in status.content  # shown as text
    for raw in (f"<@{bob.user.id}>", f"<@!{bob.user.id}>", f"<@&{crew.id}>", "@everyone"):
        assert raw not in status.content  # not even rendered as a (silent) mention
    messages = all_bot_messages(stack, ix)
    assert len(messages) >= 3  # status, delivery, ephemeral answer
    requester = world.member.user.id
    for message in messages:
        seen = pings(message)
        assert not seen["everyone"] and seen["roles"] == [], (message.content, seen)
        assert set(seen["users"]) <= {requester}, (message.content, seen)
    assert pings(status)["users"] == []
    delivered = [m for m in messages if m.attachments]
    assert [pings(m)["users"] for m in delivered] == [[requester]]


# --- provider failure ---------------------------------------------------------------------

async def test_provider_refusal_is_explained_in_the_thread_and_refunded(stack: Stack) -> None:
    emu, world = stack.emu, stack.world
    bob = emu.create_member(world.guild.id, "bob")
    bot = await stack.start_bot()
    stack.sim.script_next_task(
        TaskScript(outcome="failed", error_code="content_policy_violation", processing_s=20)
    )
    ix = await stack.edit(
        {"prompt": f"swap the face with <@{bob.user.id}>'s @everyone", "video": stack.clip()}
    )
    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content and "billed as 4 s" in reply.content

    thread = await emu.wait_for_thread(world.channel)
    notice = await emu.wait_for_message(thread, lambda m: "did not work out" in m.content)
    assert "safety filter" in notice.content and "try again" in notice.content
    assert "Nothing was charged" in notice.content
    assert "{" not in notice.content and "content_policy_violation" not in notice.content
    assert notice.pinged_user_ids == [world.member.user.id]
    assert not notice.mention_everyone and not notice.mention_roles

    status = emu.messages(world.channel)[0]
    await emu.wait_for(lambda: "Failed" in status.content, description="failed status")
    assert "safety filter" in status.content and "█" not in status.content
    assert "Nothing was charged" in status.content and "Billed" not in status.content

    assert bot.services is not None
    [job] = await bot.services.jobs.search(world.guild.id)
    assert job.state is JobState.FAILED
    entries = await ledger(stack)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, 4), (LedgerKind.REFUND, -4)
    ]
    assert stack.sim.create_attempts == 1


# --- a blank prompt from the form ---------------------------------------------------------

async def test_a_blank_prompt_in_the_form_is_refused_plainly(stack: Stack) -> None:
    emu, world = stack.emu, stack.world
    post = emu.post_user_message(
        world.channel.id, world.member.user.id, "look!", attachments=[stack.clip()]
    )
    await stack.start_bot()
    menu = await emu.send_message_command(
        world.guild, world.channel, world.member, "Edit with Kling", post
    )
    await emu.wait_for_ack(menu)
    # Discord's min_length counts characters, so whitespace alone passes its check.
    submit = await emu.submit_modal(menu, {text_input_id(menu): "  \n\t  "})

    reply = await ephemeral_answer(stack, submit)
    assert reply.content == "❌ The prompt is empty: say what should change.", reply.content
    assert stack.emu.threads(world.channel) == []
    assert stack.sim.create_attempts == 0 and await ledger(stack) == []
    assert stack.bot is not None and stack.bot.services is not None
    assert await stack.bot.services.jobs.search(world.guild.id) == []
