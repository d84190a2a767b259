"""The baseline for figure 1: a minimal discord.py bot whose /edit only defers.

Same command signature as the real /edit (so discord.py parses and converts the same
options), same intents, no services, no database. Run by the benchmark as its own process:

    BASELINE_TOKEN=... BASELINE_API_BASE=... BASELINE_GATEWAY_URL=... BASELINE_GUILD_ID=... \
        python -m bench.baseline_bot
"""

from __future__ import annotations

import asyncio
import os
import signal

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands


@app_commands.command(name="edit", description="Edit a 3–10 s video clip with Kling AI")
@app_commands.guild_only()
async def edit(
    interaction: discord.Interaction,
    prompt: app_commands.Range[str, 1, 5000],
    video: discord.Attachment | None = None,
    video_url: str | None = None,
    image1: discord.Attachment | None = None,
    image2: discord.Attachment | None = None,
    image3: discord.Attachment | None = None,
    image4: discord.Attachment | None = None,
    keep_audio: bool = True,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)


class BaselineBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned, intents=intents, help_command=None,
            guild_ready_timeout=0.05,
        )
        self.guild_id = guild_id

    async def setup_hook(self) -> None:
        self.tree.add_command(edit)
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


async def main() -> None:
    discord.http.Route.BASE = os.environ["BASELINE_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        os.environ["BASELINE_GATEWAY_URL"]
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with BaselineBot(int(os.environ["BASELINE_GUILD_ID"])) as bot:
        runner = asyncio.create_task(bot.start(os.environ["BASELINE_TOKEN"]))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await bot.close()
        stopping.cancel()
        await asyncio.gather(runner, return_exceptions=True)


if __name__ == "__main__":
    from bench.instrument import install

    install()  # only with $BENCH_TIMINGS: bot-side timestamps, as for the real bot
    asyncio.run(main())
