"""First steps: a short setup guide in a server's system channel, once, when the bot joins it
(or at its next start, when it joined while the bot was offline)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import discord
from discord.ext import commands

from bot.i18n import N_, Text
from cogs.i18n import catalogs_of
from cogs.submit import services_of, settings_of

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

# How long after joining a server the bot still posts the guide it could not post on joining
# (it was offline): a bot down for longer is rare, and a server that has used the bot for
# over a week needs no "first steps".
GUIDE_LATE: Final = timedelta(days=7)


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
        """discord.py fires this for a GUILD_CREATE after READY without `unavailable`: a
        server that adds the bot while it is connected."""
        await self._welcome(guild)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server that added the bot while it was offline arrives with the others at
        start (READY, then GUILD_CREATE: "available", never a join), so every server the bot
        joined lately is looked at; the record of guides posted keeps it to one."""
        me = guild.me
        if me is None or me.joined_at is None:
            return
        if discord.utils.utcnow() - me.joined_at > GUIDE_LATE:
            return  # an old server: it has found its way (or was welcomed long ago)
        await self._welcome(guild)

    async def _welcome(self, guild: discord.Guild) -> None:
        """Only the system channel: the one place a server has chosen for the bot's
        notices; no other channel, no direct message. In the server's preferred locale:
        every moderator reads it. Where the bot cannot post yet nothing is recorded, so a
        restart after a moderator fixed that (within `GUIDE_LATE`) still posts it."""
        channel, me = guild.system_channel, guild.me
        if channel is None or me is None or not _may_post_in(channel, me):
            log.info("guild=%d: no system channel the bot may post its guide in", guild.id)
            return
        services = services_of(self.bot)
        if not await services.guilds.claim_guide(guild.id, now=services.engine.deps.clock()):
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
