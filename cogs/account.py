"""/jobs and /quota: a member's own history and allowance, always ephemeral."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.evolink.spec import seconds_range_of
from bot.i18n import N_
from bot.jobs.messages import quota_rule
from cogs.i18n import speaker_for
from cogs.render import attempts_text, progress_bar, state_label
from cogs.submit import requester, services_of
from storage.models import JobState


class AccountCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(
        name="jobs", description=locale_str("Your recent video edits and their state")
    )
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        services, say = services_of(interaction.client), speaker_for(interaction)
        jobs = await services.jobs.recent_for_user(
            interaction.guild_id or 0, interaction.user.id, limit=10
        )
        if not jobs:
            await interaction.response.send_message(say(N_(
                "You have no edits yet. Try `/edit` with a {range} clip!",
                range=seconds_range_of(services.config.models),
            )), ephemeral=True)
            return
        lines = []
        for job in jobs:
            where = f" · <#{job.thread_id}>" if job.thread_id else ""
            extra = f" · {progress_bar(job.progress)}" if job.state is JobState.SUBMITTED else ""
            lines.append(
                f"**#{job.id}** · {say(state_label(job))}{extra}{where}"
                f" · <t:{int(job.created_at)}:R>"
            )
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(
        name="quota", description=locale_str("How many seconds of editing you have left")
    )
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        services, say = services_of(interaction.client), speaker_for(interaction)
        allowance = await services.actions.allowance(
            interaction.guild_id or 0, requester(interaction)
        )
        limits, today, month = allowance.limits, allowance.today, allowance.month
        lines = [
            N_("**Today:** {used} s used of {limit} s ({left} s left) · resets {time}",
               used=today.used, limit=today.limit.value, left=today.left,
               time=f"<t:{int(today.resets_at)}:R>"),
            N_("**This month:** {used} s used of {limit} s ({left} s left) · resets {time}",
               used=month.used, limit=month.limit.value, left=month.left,
               time=f"<t:{int(month.resets_at)}:R>"),
            N_("**Running now:** {running} of {limit}", running=allowance.active_jobs,
               limit=limits.max_concurrent.value),
            N_("**Server budget this month:** {used} s of {budget} s",
               used=allowance.guild_used_month, budget=limits.guild_budget.value),
        ]
        attempts = attempts_text(allowance.attempts)
        if attempts is not None:
            lines.append(N_("**Refused attempts:** {attempts}", attempts=attempts))
        rule = say(quota_rule(services.config.models))
        await interaction.response.send_message(f"{say.join(lines)}\n-# {rule}", ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AccountCog(bot))
