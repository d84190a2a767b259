"""The emulator as a separate process (``python -m sandbox.discord_emulator``), as the demo
and the benchmarks run it: a real discord.py bot here, the driver speaking HTTP control."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from sandbox.discord_emulator.testing import Probe, running_bot
from tests.sandbox.test_discord_emulator import ProbeBot, ProbeCog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def emulator_process() -> AsyncIterator[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.discord_emulator",
        "--token",
        "proc-token",
        "--member",
        "dave",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_bot_against_emulator_process(emulator_process: dict[str, Any]) -> None:
    info = emulator_process
    control = info["control"]
    bot = ProbeBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01)
    await bot.add_cog(ProbeCog(Probe()))
    endpoints = SimpleNamespace(api_base=info["api_base"], gateway_url=info["gateway_url"])
    async with running_bot(endpoints, bot, "proc-token"), aiohttp.ClientSession() as http:
        guild = discord.Object(int(info["guild_id"]))
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)
        body = {
            "guild_id": info["guild_id"],
            "channel_id": info["channels"]["general"],
            "user_id": info["members"]["dave"],
            "name": "echo",
            "options": {"text": "from afar"},
        }
        async with http.post(f"{control}/interactions/slash", json=body) as resp:
            assert resp.status == 200
            ix = await resp.json()

        version = 0
        while True:  # long-poll on state changes; no sleeping
            async with http.get(f"{control}/interactions/{ix['id']}") as resp:
                state = await resp.json()
            if state["responses"]:
                break
            async with http.get(
                f"{control}/wait", params={"since": str(version), "timeout": "5"}
            ) as resp:
                version = (await resp.json())["version"]
        assert state["ack_type"] == 4 and state["ack_latency"] < 3
        assert [r["content"] for r in state["responses"]] == ["from afar"]
