"""KlingBot: discord.py glue that starts the services in setup_hook, before any cog loads,
and closes them on exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import N_, Catalogs, Text
from bot.jobs.config import EngineConfig
from bot.media.prober import Prober
from bot.services import Services
from bot.settings import Settings
from cogs.errors import answer_privately, apologise
from cogs.forms import OpenForms
from cogs.i18n import CommandTranslator, speaker_for
from cogs.log_channel import LogChannelMirror
from cogs.notifier import DiscordNotifier
from cogs.views import EditAgainButton, RerunButton, answer_stale_form

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.edit", "cogs.account", "cogs.admin", "cogs.first_steps")
NOT_ALLOWED = N_("You are not allowed to use this command here.")


class KlingTree(app_commands.CommandTree[discord.Client]):
    """Answers every failed interaction, whatever state its response is in."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        say = speaker_for(interaction)
        if interaction.guild_id is None:
            await interaction.response.send_message(
                say(N_("Video edits work in servers, not in direct messages.")), ephemeral=True
            )
            return False
        if not interaction.is_guild_integration():
            # A member's own install of the app: this server's limits, moderators and
            # channels do not apply to it, so nothing is done through it.
            await interaction.response.send_message(
                say(N_("Video edits work only where the bot has been added to the server. Ask "
                       "a moderator to add it.")), ephemeral=True,
            )
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        if isinstance(error, app_commands.CheckFailure):
            refusal = getattr(error, "text", None)  # ours carry a Text (cogs.admin)
            text = refusal if isinstance(refusal, Text) else NOT_ALLOWED
            await answer_privately(interaction, speaker_for(interaction)(text))
            return
        command = interaction.command.qualified_name if interaction.command else "?"
        await apologise(interaction, error, f"command {command}")


class KlingBot(commands.AutoShardedBot):
    catalogs: Catalogs  # read in setup_hook, before any cog loads or any interaction arrives

    def __init__(
        self,
        settings: Settings,
        *,
        engine_config: EngineConfig | None = None,
        sync_only: bool = False,
        prober: Prober | None = None,
        **options: object,
    ) -> None:
        # Slash commands need only the GUILDS intent: no message content, no member list.
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            # Discord requires shards from 2,500 guilds (close code 4011, after which
            # discord.py does not reconnect); without SHARD_COUNT, Discord's recommendation.
            shard_count=settings.shard_count,
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]  # None: all (shard.py)
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=KlingTree,
            # Every command is offered only in servers that added the bot (never to a
            # member's own install, never in DMs): the server's limits apply to each edit.
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=False, private_channel=False
            ),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **options,  # type: ignore[arg-type]
        )
        # discord.py's AutoShardedClient.close() posts to a queue that only connect()
        # creates: closing a bot that never connected (sync-only, a failed start) raised
        # AttributeError. The queue connect() makes replaces this one.
        self._AutoShardedClient__queue: asyncio.PriorityQueue[Any] = asyncio.PriorityQueue()
        self.settings = settings
        self.engine_config = engine_config
        self.sync_only = sync_only
        self.prober = prober  # None: the services start their own media probe pool
        self.open_forms = OpenForms()
        self.notifier = DiscordNotifier(self, edit_interval=settings.status_edit_interval_s)
        self._running = contextlib.AsyncExitStack()
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        """Running from setup_hook on: before any cog loads or any interaction arrives."""
        if self._services is None:
            raise RuntimeError("the services are not running (sync-only bot, or closed)")
        return self._services

    async def setup_hook(self) -> None:
        # Parsing the .po files takes a tenth of a second: off the event loop.
        self.catalogs = await asyncio.to_thread(Catalogs)
        if not self.sync_only:
            # Closed newest first: the services (and their last deliveries) before the notifier.
            self._running.push_async_callback(self.notifier.close)
            self._services = await self._running.enter_async_context(
                Services.running(
                    self.settings, self.notifier, config=self.engine_config,
                    mirror=LogChannelMirror(self), prober=self.prober,
                )
            )
            self.add_dynamic_items(EditAgainButton, RerunButton)
        await self.tree.set_translator(CommandTranslator(self.catalogs))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.dev_guild_id is not None and not self.sync_only:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            log.info("commands synced to dev guild=%d", self.settings.dev_guild_id)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await answer_stale_form(interaction, self.open_forms)

    async def close(self) -> None:
        await self._running.aclose()  # meanwhile the engine refuses new edits politely
        self._services = None
        await super().close()
