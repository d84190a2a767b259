"""Discord's interaction rules and rate limits, seen by a real discord.py bot.

No test waits for real time to pass: the emulator's rule clock is advanced instead, and
handlers are held at gates (``Probe.gate``) while the test moves the clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from sandbox.discord_emulator import DiscordEmulator, RateLimitRule
from sandbox.discord_emulator.testing import Probe, World, build_world, running_bot
from tests.sandbox.test_discord_emulator import ProbeBot, ProbeCog
from tests.sandbox.wire import AUTH


class RulesCog(commands.Cog):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @app_commands.command(name="slow", description="Answers after the test opens the gate")
    async def slow(self, interaction: discord.Interaction):
        self.probe.record("slow-entered")
        await self.probe.gate("slow")
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            self.probe.record("slow", exc)

    @app_commands.command(name="twice", description="Acknowledges twice")
    async def twice(self, interaction: discord.Interaction):
        await interaction.response.send_message("first")
        # discord.py refuses a second answer locally; forget that to reach the server,
        # as a second bot process answering the same interaction would.
        interaction.response._response_type = None
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            self.probe.record("twice", exc)

    @app_commands.command(name="early", description="Follows up before acknowledging")
    async def early(self, interaction: discord.Interaction):
        try:
            await interaction.followup.send("too early")
        except discord.HTTPException as exc:
            self.probe.record("early", exc)
        await interaction.response.send_message("answered")

    @app_commands.command(name="later", description="Follows up after the test moves time")
    async def later(self, interaction: discord.Interaction):
        await interaction.response.defer()
        await self.probe.gate("later")
        try:
            await interaction.followup.send("still here?")
        except discord.HTTPException as exc:
            self.probe.record("later", exc)

    @app_commands.command(name="burst", description="Posts a status message and edits it")
    async def burst(self, interaction: discord.Interaction, edits: int):
        await interaction.response.defer(ephemeral=True)
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel)
        status = await channel.send("status 0")
        for i in range(1, edits + 1):
            await status.edit(content=f"status {i}")
        await interaction.followup.send("all edits done", ephemeral=True)
        self.probe.record("burst", status.id)


@dataclass
class RulesEnv:
    emu: DiscordEmulator
    world: World
    probe: Probe


@pytest.fixture
async def env(emu: DiscordEmulator) -> AsyncIterator[RulesEnv]:
    world = build_world(emu)
    probe = Probe()
    bot = ProbeBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01)
    await bot.add_cog(RulesCog(probe))
    await bot.add_cog(ProbeCog(probe))
    async with running_bot(emu, bot, "test-token"):
        guild = discord.Object(world.guild.id)
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)
        yield RulesEnv(emu, world, probe)


async def test_late_acknowledgement_is_unknown_interaction(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "slow")
    await env.probe.wait("slow-entered")
    emu.advance(3.5)
    env.probe.open("slow")
    error = await env.probe.wait("slow")
    assert isinstance(error, discord.NotFound)
    assert (error.status, error.code, error.text) == (404, 10062, "Unknown interaction")
    assert not ix.acknowledged and ix.responses == []
    [attempt] = ix.attempts
    assert attempt.code == 10062 and attempt.elapsed >= 3.5


async def test_second_acknowledgement_is_rejected(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "twice")
    error = await env.probe.wait("twice")
    assert (error.status, error.code) == (400, 40060)
    assert ix.ack_type == 4
    assert [(a.response_type, a.status) for a in ix.attempts] == [(4, 200), (5, 400)]


async def test_followup_before_acknowledgement_is_unknown_webhook(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "early")
    error = await env.probe.wait("early")
    assert isinstance(error, discord.NotFound) and error.code == 10015
    reply = await emu.wait_for_response(ix)
    assert reply.content == "answered"
    assert ix.errors == [10015]


async def test_interaction_token_expires_after_15_minutes(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "later")
    await emu.wait_for_ack(ix)
    emu.advance(15 * 60 + 1)
    env.probe.open("later")
    error = await env.probe.wait("later")
    assert (error.status, error.code) == (401, 50027)
    assert ix.original is not None and ix.original.loading  # still "thinking" forever


async def test_burst_of_edits_is_paced_and_all_succeed(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    rule = RateLimitRule(
        "channel-messages",
        (
            ("POST", "/channels/{channel_id}/messages"),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
        ),
        limit=5,
        per=0.5,
    )
    emu.set_rate_limits([rule])
    # Another client (same token) uses up the channel's window, so the bot's first post
    # meets a 429 and has to wait; everything after is paced by the headers.
    url = f"{emu.api_base}/channels/{w.channel.id}/messages"
    headers = AUTH
    async with aiohttp.ClientSession() as http:
        for i in range(5):
            async with http.post(url, json={"content": f"noise {i}"}, headers=headers) as resp:
                assert resp.status == 200

    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "burst", {"edits": 12})
    status_id = await env.probe.wait("burst")
    status = emu.message(status_id)
    assert status.content == "status 12" and status.edits == 12
    assert (await emu.wait_for_response(ix)).content == "all edits done"

    limited = emu.rest_calls(status=429)
    assert limited and all(c.bucket == "channel-messages" for c in limited)
    assert all(
        c.ratelimit_headers["Via"] and c.ratelimit_headers["X-RateLimit-Remaining"] == "0"
        for c in limited
    )
    assert [h.bucket for h in emu.rate_limit_hits] == ["channel-messages"] * len(limited)
    bucketed = [c for c in emu.rest_calls() if c.bucket == "channel-messages"]
    ok = [c for c in bucketed if c.status == 200]
    assert len(ok) == 5 + 1 + 12
    assert {c.ratelimit_headers["X-RateLimit-Bucket"] for c in bucketed} == {rule.bucket_hash}
    assert {c.ratelimit_headers["X-RateLimit-Limit"] for c in bucketed} == {"5"}
    remaining = [int(c.ratelimit_headers["X-RateLimit-Remaining"]) for c in ok]
    assert remaining.count(0) >= 3  # at least 18 requests / 5 per window: the bot was slowed
    assert all(0 <= r <= 4 for r in remaining)


async def test_followup_file_over_interaction_limit_is_413(env: RulesEnv) -> None:
    emu, w = env.emu, env.world
    emu.set_upload_limit(w.guild.id, 1024)
    ix = await emu.send_slash_command(
        w.guild, w.channel, w.member, "upload", {"size": 1025, "followup": True}
    )
    assert ix.payload["attachment_size_limit"] == 1024
    error = await env.probe.wait("upload")
    assert (error.status, error.code) == (413, 40005)
    reply = await emu.wait_for_response(ix)
    assert reply.content == "failed: 40005" and reply.ephemeral and reply.attachments == []
