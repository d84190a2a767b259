"""First steps: a short setup guide in a server's system channel when the bot joins it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.i18n import N_, Text
from cogs.i18n import catalogs_of
from cogs.submit import settings_of

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)


def first_steps_text(settings: Settings) -> list[Text]:
    """What a server's moderators need to know on day one, with the limits in force."""
    spec = settings.model_spec
    guide = (
        N_("the moderator guide: <{url}>", url=settings.moderator_guide_url)
        if settings.moderator_guide_url
        else N_("ask whoever runs this bot for the moderator guide")
    )
    return [
        N_("👋 **Kling video edits are ready on this server.**"),
        N_("- **Who can edit:** every member, with `/edit` in any channel where I can post: a "
           "clip ({range}; longer clips are cut to {seconds} s from `start`), a prompt and up "
           "to 4 reference images.", range=spec.duration_range_text, seconds=spec.max_seconds),
        N_("- **Default limits:** {daily} billed seconds per member a day and {monthly} a "
           "month, {concurrent} edits at once, {cooldown} s between edits, {budget} s a month "
           "for the whole server.", daily=settings.default_daily_seconds,
           monthly=settings.default_monthly_seconds,
           concurrent=settings.default_max_concurrent, cooldown=settings.default_cooldown_s,
           budget=settings.default_guild_budget),
        N_("- **Moderators** (Manage Server): `/kling-admin limits show` shows the limits in "
           "force, `/kling-admin limits set` changes them, `/kling-admin channels allow` keeps "
           "`/edit` to chosen channels; for everything else, {guide}.", guide=guide),
    ]


def _may_post_in(channel: discord.TextChannel, me: discord.Member) -> bool:
    """View Channel and Send Messages, from the roles and overwrites the bot has there."""
    permissions = channel.permissions_for(me)
    return permissions.view_channel and permissions.send_messages


class FirstStepsCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """discord.py fires this only for a GUILD_CREATE after READY without `unavailable`
        (a join), never for a reconnect's guilds, so each join posts the guide once.

        Only the system channel: the one place a server has chosen for the bot's notices;
        no other channel, no direct message. In the server's preferred locale: every
        moderator reads it."""
        channel, me = guild.system_channel, guild.me
        if channel is None or me is None or not _may_post_in(channel, me):
            log.info("joined guild=%d: no system channel the bot may post in", guild.id)
            return
        say = catalogs_of(self.bot).speaker(guild.preferred_locale.value)
        try:
            await channel.send(
                say.join(first_steps_text(settings_of(self.bot))),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as error:  # a moderator's change raced the check
            log.warning("setup guide not posted guild=%d: %s", guild.id, error)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(FirstStepsCog(bot))
