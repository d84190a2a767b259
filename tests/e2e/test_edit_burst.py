"""Many members at once: every /edit is answered in time, and a busy channel keeps moving."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sandbox.discord_emulator.ratelimit import DEFAULT_RULES
from sandbox.evolink_sim import TaskScript
from sandbox.media_samples import make_mp4_bytes
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer

# Long enough that no job finishes during a test: only submission is under test here.
ENDLESS = TaskScript(processing_s=1_000_000, estimated_time=1_000_000)
OTHER_RULES = [rule for rule in DEFAULT_RULES if not rule.name.startswith("channel-message")]


@pytest.mark.alone  # Discord's 3 s deadline, timed on this machine
async def test_a_burst_of_thirty_edits_is_acknowledged_and_answered(stack: Stack) -> None:
    emu, world = stack.emu, stack.world
    # Discord lets a channel take 5 messages per 5 s and every edit posts a status message
    # there, so 30 edits in one channel need ~30 s whatever the bot does (discord.py even
    # holds the request that empties a bucket until it refills). Three per channel keeps
    # this test about the bot, not about that floor.
    channels = [world.channel] + [
        emu.create_text_channel(world.guild.id, f"edits-{n}") for n in range(9)
    ]
    members = [emu.create_member(world.guild.id, f"member{n}") for n in range(30)]
    stack.sim.set_default_script(ENDLESS)
    # All thirty are checked at once: the cap on intakes (refusing the rest as "busy") is
    # tested on its own (tests/integration/test_admission.py).
    await stack.start_bot(STATUS_EDIT_INTERVAL_SECONDS="5")
    clip = make_mp4_bytes(4.0)
    clips = [emu.add_attachment(f"clip{n}.mp4", clip, content_type="video/mp4") for n in range(30)]

    interactions = await asyncio.gather(
        *(
            emu.send_slash_command(
                world.guild, channels[n % 10], member, "edit",
                {"prompt": f"edit number {n}", "video": clips[n]},
            )
            for n, member in enumerate(members)
        )
    )
    replies = await asyncio.gather(*(ephemeral_answer(stack, ix, 20) for ix in interactions))

    latencies = [ix.ack_latency for ix in interactions]
    assert all(latency is not None and latency < 3.0 for latency in latencies), latencies
    assert [reply.visible_to for reply in replies] == [member.user.id for member in members]
    assert all("started" in reply.content for reply in replies), [r.content for r in replies]
    assert stack.sim.create_attempts == 30


async def test_status_edits_in_a_busy_channel_take_turns_at_a_steady_pace(
    stack: Stack,
) -> None:
    """Discord gives a channel 5 new messages and 5 edits per 5 s. Status edits of all
    jobs in a channel therefore go one at a time and at least STATUS_EDIT_INTERVAL apart,
    jobs taking turns: however many edits run there, a newcomer's status message never
    queues behind a pile of edits, and every running job still shows progress. (The
    emulator's channel limits are lifted here so the pace measured is the bot's own, not
    the emulator's.)
    """
    emu, world = stack.emu, stack.world
    emu.set_rate_limits(OTHER_RULES)
    interval = 0.25
    members = [emu.create_member(world.guild.id, f"member{n}") for n in range(5)]
    # ~15 real seconds of steadily rising progress: a change on nearly every poll.
    stack.sim.set_default_script(TaskScript(processing_s=3000, estimated_time=3000))
    await stack.start_bot(STATUS_EDIT_INTERVAL_SECONDS=str(interval))
    running = await asyncio.gather(
        *(
            stack.edit({"prompt": f"running {n}", "video": stack.clip(f"r{n}.mp4")}, member=m)
            for n, m in enumerate(members)
        )
    )
    await asyncio.gather(*(ephemeral_answer(stack, ix) for ix in running))
    statuses = emu.messages(world.channel)
    assert len(statuses) == 5

    def status_edits() -> list[float]:
        return [
            call.monotonic
            for call in emu.rest_calls("PATCH", "/channels/{channel_id}/messages/{message_id}")
            if f"/channels/{world.channel.id}/" in call.path
        ]

    await emu.wait_for(lambda: len(status_edits()) >= 8, 10, "eight status edits")
    times = status_edits()[:8]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.8 * interval, gaps  # one channel, one edit at a time, paced
    assert all(status.edits >= 1 for status in statuses), [s.edits for s in statuses]
