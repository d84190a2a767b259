"""/jobs and /quota: a member's own history and allowance, always ephemeral."""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs.errors import EditRefused
from bot.jobs.policy import Windows
from cogs.render import progress_bar, state_label
from cogs.submit import role_ids, services_of
from storage.models import JobState


class AccountCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="jobs", description="Your recent video edits and their state")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction) -> None:
        try:
            services = services_of(interaction)
        except EditRefused as refusal:
            await interaction.response.send_message(refusal.reason, ephemeral=True)
            return
        jobs = await services.jobs.recent_for_user(
            interaction.guild_id or 0, interaction.user.id, limit=10
        )
        if not jobs:
            await interaction.response.send_message(
                "You have no edits yet. Try `/edit` with a "
                f"{services.config.spec.duration_range_text} clip!",
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
        try:
            services = services_of(interaction)
        except EditRefused as refusal:
            await interaction.response.send_message(refusal.reason, ephemeral=True)
            return
        now = time.time()
        windows = Windows.at(now)
        snapshot = await services.quota.snapshot(
            guild_id=interaction.guild_id or 0, user_id=interaction.user.id,
            role_ids=role_ids(interaction), day_start=windows.day_start,
            month_start=windows.month_start,
        )
        limits = services.engine.policy.limits(snapshot)
        day_left = limits.daily.value + snapshot.granted_today - snapshot.used_today
        month_left = limits.monthly.value + snapshot.granted_month - snapshot.used_month
        lines = [
            f"**Today:** {snapshot.used_today} s used of {limits.daily.value} s"
            f" ({max(day_left, 0)} s left) · resets <t:{int(windows.day_end)}:R>",
            f"**This month:** {snapshot.used_month} s used of {limits.monthly.value} s"
            f" ({max(month_left, 0)} s left) · resets <t:{int(windows.month_end)}:R>",
            f"**Running now:** {snapshot.active_jobs} of {limits.max_concurrent.value}",
            f"**Server budget this month:** {snapshot.guild_used_month} s of "
            f"{limits.guild_budget.value} s",
            f"-# A clip is billed by its length, rounded up: "
            f"{services.config.spec.duration_range_text} per edit.",
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AccountCog(bot))
