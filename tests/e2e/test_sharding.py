"""The bot on several gateway shards: each server's events reach the shard that owns it."""

from __future__ import annotations

import pytest

from sandbox.discord_emulator.models import Channel, Guild
from sandbox.evolink_sim import TaskScript
from storage.models import JobState
from tests.e2e.admin_view import jobs
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer
from tests.s3_endpoint import S3Bucket


def second_guild_on_the_other_shard(stack: Stack, shards: int) -> Guild:
    """A guild (with the bot, a channel, a member) owned by another shard than the first."""
    emu, first = stack.emu, stack.world.guild
    while True:
        emu.advance(0.001)  # the next snowflake's timestamp, hence its shard, moves on
        guild = emu.create_guild("Second Guild")
        if (guild.id >> 22) % shards != (first.id >> 22) % shards:
            break
    return guild


async def _edit_in(stack: Stack, guild: Guild, channel: Channel) -> str:
    emu = stack.emu
    member = emu.create_member(guild.id, f"member-of-{guild.id}")
    ix = await emu.send_slash_command(
        guild, channel, member, "edit", {"prompt": "make it snow", "video": stack.clip()}
    )
    return (await ephemeral_answer(stack, ix)).content


async def test_with_two_shards_each_server_is_served_once_by_its_own_shard(
    stack: Stack,
) -> None:
    second = second_guild_on_the_other_shard(stack, 2)
    second_channel = stack.emu.create_text_channel(second.id, "general")
    stack.sim.set_default_script(TaskScript(processing_s=100_000, estimated_time=100_000))
    bot = await stack.start_bot(SHARD_COUNT="2")
    app = stack.world.app  # the bot syncs its dev guild; the second gets the same commands
    app.guild_commands[second.id] = app.guild_commands[stack.world.guild.id]

    assert bot.shard_count == 2
    shards = sorted(s.shard for s in stack.emu.gateway.sessions_for(stack.world.app.id))
    assert shards == [(0, 2), (1, 2)]
    for guild, channel in ((stack.world.guild, stack.world.channel), (second, second_channel)):
        answer = await _edit_in(stack, guild, channel)
        assert "started" in answer, answer  # one answer: a second one would be refused
    assert {job.state for job in await jobs(stack)} == {JobState.SUBMITTED}
    assert [ix.errors for ix in stack.emu.state.interactions.values()] == [[], []]


async def test_without_shard_count_the_bot_runs_the_shards_discord_recommends(
    stack: Stack,
) -> None:
    stack.emu.guilds_per_recommended_shard = 1  # one shard per server
    stack.emu.create_guild("Second Guild")

    bot = await stack.start_bot()

    assert bot.shard_count == 2
    assert len(stack.emu.gateway.sessions_for(stack.world.app.id)) == 2


@pytest.mark.money_open("its cluster database is dropped by its own fixture before the final check")
async def test_a_process_runs_only_its_own_shard_ids(
    stack: Stack, cluster_database: str, s3_bucket: S3Bucket
) -> None:
    first_shard = (stack.world.guild.id >> 22) % 2

    # One process of several: they share PostgreSQL and the bucket (else it is refused).
    await stack.start_bot(
        SHARD_COUNT="2", SHARD_IDS=str(first_shard), DATABASE_URL=cluster_database,
        **s3_bucket.settings(),
    )

    sessions = stack.emu.gateway.sessions_for(stack.world.app.id)
    assert [s.shard for s in sessions] == [(first_shard, 2)]
    answer = await _edit_in(stack, stack.world.guild, stack.world.channel)
    assert "started" in answer, answer
