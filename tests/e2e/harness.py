"""The real KlingBot (real discord.py) against the Discord emulator and the EvoLink simulator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.client import KlingBot
from bot.jobs.config import EngineConfig
from bot.media.prober import Prober
from bot.services import Services
from bot.settings import Settings
from sandbox.demo.processes import free_port
from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.interactions import InteractionRecord
from sandbox.discord_emulator.testing import World, build_world, running_bot
from sandbox.evolink_sim import EvolinkSimulator
from sandbox.media_samples import make_mp4_bytes
from tests.conftest import DatabaseLocation
from tests.integration.engine_harness import API_KEY, FAST_SCHEDULE

TOKEN = "test-token"
STOP_LIMIT_S = 15.0  # the tracker alone may give running actions 5 s


class Stack:
    """One emulated Discord, one simulated EvoLink, and a bot that can be restarted."""

    def __init__(
        self, tmp_path: Path, emu: DiscordEmulator, sim: EvolinkSimulator, prober: Prober,
        database: DatabaseLocation | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.database = database  # None: SQLite in DATA_DIR, as an operator's default
        self.prober = prober  # shared by every bot this stack starts
        self.emu = emu
        self.sim = sim
        self.world: World = build_world(emu, token=TOKEN)
        self.port = free_port()
        self.bot: KlingBot | None = None
        self._bot_context: contextlib.AbstractAsyncContextManager[Any] | None = None

    @property
    def live(self) -> Services:
        """The running bot's services (the money check reads its books)."""
        assert self.bot is not None
        return self.bot.services

    @property
    def public_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: str) -> Settings:
        env = {
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_BASE": self.emu.api_base,
            "DISCORD_GATEWAY_URL": self.emu.gateway_url,
            "EVOLINK_BASE_URL": self.sim.base_url,
            "EVOLINK_API_KEY": API_KEY,
            "EVOLINK_REQUESTS_PER_SECOND": "200",
            "PUBLIC_BASE_URL": self.public_base_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            "METRICS_PORT": "0",
            "DATA_DIR": str(self.tmp_path / "data"),
            "DEV_GUILD_ID": str(self.world.guild.id),
            "DEFAULT_COOLDOWN_SECONDS": "0",
            "STATUS_EDIT_INTERVAL_SECONDS": "0.05",
            "ALLOW_INSECURE_MEDIA_LINKS": "true",
            **(self.database.bot_settings() if self.database else {}),
            **overrides,
        }
        return Settings(_env_file=None, **env)  # type: ignore[call-arg]

    async def start_bot(self, **overrides: str) -> KlingBot:
        settings = self.settings(**overrides)
        config = dataclasses.replace(EngineConfig.from_settings(settings), schedule=FAST_SCHEDULE)
        bot = KlingBot(
            settings, engine_config=config, prober=self.prober, guild_ready_timeout=0.01
        )
        bot.before_identify_hook = _identify_at_once  # type: ignore[method-assign]
        self._bot_context = running_bot(self.emu, bot, TOKEN)
        await self._bot_context.__aenter__()
        self.bot = bot
        return bot

    async def stop_bot(self) -> None:
        """Close the bot as SIGTERM would; a shutdown that hangs fails the test instead."""
        if self._bot_context is not None:
            context, self._bot_context = self._bot_context, None
            self.bot = None
            try:
                async with asyncio.timeout(STOP_LIMIT_S):
                    await context.__aexit__(None, None, None)
            except TimeoutError:
                raise AssertionError(f"the bot did not shut down within {STOP_LIMIT_S} s") from None

    def clip(self, name: str = "clip.mp4", seconds: float = 4.0) -> Any:
        return self.emu.add_attachment(name, make_mp4_bytes(seconds), content_type="video/mp4")

    async def edit(self, options: dict[str, Any], member: Any = None) -> Any:
        return await self.emu.send_slash_command(
            self.world.guild, self.world.channel, member or self.world.member, "edit", options
        )


async def _identify_at_once(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before every IDENTIFY but a process's first (Discord's identify
    rate limit); the emulator has no such limit, and tests need not wait."""


def text_input_id(opener: InteractionRecord) -> str:
    """The custom_id of the (only) text input of the modal `opener` answered with."""
    assert opener.modal is not None
    for top in opener.modal["components"]:
        for component in top.get("components", [top.get("component", {})]):
            if component.get("type") == 4:
                return str(component["custom_id"])
    raise AssertionError(f"no text input in {opener.modal}")


@contextlib.asynccontextmanager
async def running_stack(
    tmp_path: Path, prober: Prober, *, rate_limits: bool = True,
    database: DatabaseLocation | None = None,
) -> AsyncIterator[Stack]:
    async with DiscordEmulator(rate_limits=rate_limits) as emu:
        async with EvolinkSimulator(
            api_key=API_KEY, time_scale=200.0, allow_private_urls=True,
            allow_insecure_callbacks=True,
        ) as sim:
            stack = Stack(tmp_path, emu, sim, prober, database)
            try:
                yield stack
            finally:
                await stack.stop_bot()


#: How a thread stops taking the bot's posts, and Discord's answer to a post there.
THREAD_CLOSINGS = ["deleted", "archived", "locked", "no access"]


def close_thread(emu: DiscordEmulator, thread_id: int, how: str) -> None:
    """Deleted (10003), archived or locked (50083), or the bot lost access (50001: a
    private thread it was removed from; threads have no permissions of their own to take
    away in the emulator, so the next post is answered so)."""
    if how == "deleted":
        emu.delete_channel(thread_id)
    elif how == "no access":
        emu.fail_next("POST", "/channels/{channel_id}/messages", 403, 50001, "Missing Access")
    else:
        emu.archive_thread(thread_id, locked=how == "locked")
