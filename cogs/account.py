"""/jobs and /quota: a member's own history and allowance, always ephemeral."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.evolink.spec import seconds_range_of
from bot.jobs.messages import quota_rule
from cogs.render import attempts_text, progress_bar, state_label
from cogs.submit import requester, services_of
from storage.models import JobState


class AccountCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your recent video edits and their state")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        services = services_of(interaction.client)
        jobs = await services.jobs.recent_for_user(
            interaction.guild_id or 0, interaction.user.id, limit=10
        )
        if not jobs:
            await interaction.response.send_message(
                "You have no edits yet. Try `/edit` with a "
                f"{seconds_range_of(services.config.models)} clip!",
                ephemeral=True,
            )
            return
        lines = []
        for job in jobs:
            where = f" · <#{job.thread_id}>" if job.thread_id else ""
            extra = f" · {progress_bar(job.progress)}" if job.state is JobState.SUBMITTED else ""
            lines.append(
                f"**#{job.id}** · {state_label(job)}{extra}{where} · <t:{int(job.created_at)}:R>"
            )
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="quota", description="How many seconds of editing you have left")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        services = services_of(interaction.client)
        allowance = await services.actions.allowance(
            interaction.guild_id or 0, requester(interaction)
        )
        limits, today, month = allowance.limits, allowance.today, allowance.month
        lines = [
            f"**Today:** {today.used} s used of {today.limit.value} s"
            f" ({today.left} s left) · resets <t:{int(today.resets_at)}:R>",
            f"**This month:** {month.used} s used of {month.limit.value} s"
            f" ({month.left} s left) · resets <t:{int(month.resets_at)}:R>",
            f"**Running now:** {allowance.active_jobs} of {limits.max_concurrent.value}",
            f"**Server budget this month:** {allowance.guild_used_month} s of "
            f"{limits.guild_budget.value} s",
        ]
        attempts = attempts_text(allowance.attempts)
        if attempts is not None:
            lines.append(f"**Refused attempts:** {attempts}")
        lines.append(f"-# {quota_rule(services.config.models)}")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AccountCog(bot))
