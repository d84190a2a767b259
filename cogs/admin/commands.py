"""/kling-admin: the moderators' surface over AdminService. Thin: parse, call, render."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Literal, TypeVar

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.admin.errors import AdminRefused
from bot.admin.models import Change
from bot.admin.reports import audit_csv
from bot.admin.service import AdminService
from bot.i18n import Speaker
from cogs.admin import render
from cogs.admin.params import ModeratorOnly, RuledChannel, display_names
from cogs.i18n import speaker_for
from cogs.submit import requester, services_of

T = TypeVar("T")
Seconds = app_commands.Range[int, 0, 10_000_000]
QUIET = discord.AllowedMentions.none()


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(
    commands.GroupCog,
    group_name="kling-admin",
    group_description=locale_str(
        "Moderators: limits, members, channels, jobs and usage of video edits"
    ),
):
    limits = app_commands.Group(name="limits", description=locale_str("Server-wide default limits"))
    budget = app_commands.Group(
        name="budget", description=locale_str("The server's monthly budget")
    )
    user = app_commands.Group(
        name="user", description=locale_str("One member's usage, limits and access")
    )
    role = app_commands.Group(name="role", description=locale_str("Limits for members with a role"))
    channels = app_commands.Group(
        name="channels", description=locale_str("Where /edit may be used")
    )
    jobs = app_commands.Group(name="jobs", description=locale_str("Inspect and fix edits"))
    log_channel = app_commands.Group(
        name="log-channel", description=locale_str("Mirror admin actions")
    )
    moderator_role = app_commands.Group(
        name="moderator-role", description=locale_str("A role that may use these commands")
    )

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @property
    def service(self) -> AdminService:
        return services_of(self.bot).admin

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if not isinstance(interaction.user, discord.Member) or interaction.guild_id is None:
            raise ModeratorOnly()
        if not await self.service.is_moderator(interaction.guild_id, requester(interaction)):
            raise ModeratorOnly()
        return True

    @staticmethod
    async def _work(interaction: discord.Interaction, work: Awaitable[T]) -> T | None:
        """Defer, then run one service call; a refusal is answered here (and gives None).

        Deferring first keeps the answer in Discord's 3 s window even when mirroring to the
        log channel waits on its rate limit: a change that is committed but never confirmed
        would invite the moderator to repeat it.
        """
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            return await work
        except AdminRefused as refusal:
            await interaction.followup.send(
                f"❌ {speaker_for(interaction)(refusal.text)}", ephemeral=True,
                allowed_mentions=QUIET,
            )
            return None

    @staticmethod
    async def _send(interaction: discord.Interaction, text: str, *files: discord.File) -> None:
        """The (deferred) interaction's ephemeral answer, pinging nobody."""
        await interaction.followup.send(
            render.clip(text), files=list(files) or discord.utils.MISSING, ephemeral=True,
            allowed_mentions=QUIET,
        )

    async def _reply(
        self,
        interaction: discord.Interaction,
        work: Awaitable[T],
        describe: Callable[[T, Speaker], str] | None = None,
    ) -> None:
        """Run one service call and answer ephemerally, in the moderator's language, with
        its text or its refusal."""
        result = await self._work(interaction, work)
        if result is None:
            return
        say = speaker_for(interaction)
        if describe is not None:
            text = describe(result, say)
        elif isinstance(result, Change):
            text = say(result.text)
        else:
            raise TypeError(f"no text for {type(result).__name__}")
        await self._send(interaction, text)

    @staticmethod
    def _ids(interaction: discord.Interaction) -> tuple[int, int]:
        return interaction.guild_id or 0, interaction.user.id

    # --- limits and budget -----------------------------------------------------------

    @limits.command(
        name="show", description=locale_str("Show the limits in force and the ceilings")
    )
    async def limits_show(self, interaction: discord.Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        await self._reply(interaction, self.service.limits_show(guild_id), render.limits_text)

    @limits.command(name="set", description=locale_str("Change the server's default limits"))
    @app_commands.describe(
        daily_seconds=locale_str("Billed seconds per member per day"),
        monthly_seconds=locale_str("Per member per month"),
        max_concurrent=locale_str("Edits one member may run at once"),
        cooldown_seconds=locale_str("Pause between edits"),
    )
    async def limits_set(
        self,
        interaction: discord.Interaction,
        daily_seconds: Seconds | None = None,
        monthly_seconds: Seconds | None = None,
        max_concurrent: Seconds | None = None,
        cooldown_seconds: Seconds | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(
            interaction,
            self.service.limits_set(
                guild_id,
                actor,
                daily_seconds=daily_seconds,
                monthly_seconds=monthly_seconds,
                max_concurrent=max_concurrent,
                cooldown_seconds=cooldown_seconds,
            ),
        )

    @budget.command(
        name="set", description=locale_str("Cap the billed seconds the whole server may use")
    )
    @app_commands.describe(
        monthly_seconds=locale_str("Billed seconds per calendar month for everyone")
    )
    async def budget_set(self, interaction: discord.Interaction, monthly_seconds: Seconds) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.budget_set(guild_id, actor, monthly_seconds))

    # --- members and roles ---------------------------------------------------------------

    @user.command(
        name="show", description=locale_str("A member's usage, limits, jobs and block state")
    )
    @app_commands.describe(member=locale_str("The member to inspect"))
    async def user_show(self, interaction: discord.Interaction, member: discord.Member) -> None:
        guild_id, _ = self._ids(interaction)
        roles = [role.id for role in member.roles]
        await self._reply(
            interaction, self.service.user_show(guild_id, member.id, roles), render.user_text
        )

    @user.command(
        name="limit", description=locale_str("Set a member's personal limits (empty clears)")
    )
    @app_commands.describe(
        member=locale_str("The member"),
        daily_seconds=locale_str("Per day"),
        monthly_seconds=locale_str("Per month"),
    )
    async def user_limit(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        daily_seconds: Seconds | None = None,
        monthly_seconds: Seconds | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(
            interaction,
            self.service.user_limit(
                guild_id,
                actor,
                member.id,
                daily_seconds=daily_seconds,
                monthly_seconds=monthly_seconds,
            ),
        )

    @user.command(
        name="grant", description=locale_str("Give a member extra seconds today and this month")
    )
    @app_commands.describe(
        member=locale_str("The member"), seconds=locale_str("Extra billed seconds")
    )
    async def user_grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        seconds: app_commands.Range[int, 1, 10_000_000],
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.user_grant(guild_id, actor, member.id, seconds))

    @user.command(name="reset", description=locale_str("Forget a member's usage so far"))
    @app_commands.describe(member=locale_str("The member"))
    async def user_reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.user_reset(guild_id, actor, member.id))

    @user.command(name="block", description=locale_str("Stop a member from using /edit"))
    @app_commands.describe(
        member=locale_str("The member"), reason=locale_str("Shown to the member")
    )
    async def user_block(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        reason: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.user_block(guild_id, actor, member.id, reason))

    @user.command(name="unblock", description=locale_str("Let a blocked member use /edit again"))
    @app_commands.describe(member=locale_str("The member"))
    async def user_unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.user_unblock(guild_id, actor, member.id))

    @role.command(
        name="limit", description=locale_str("Limits for a role; the most generous role wins")
    )
    @app_commands.describe(
        role=locale_str("The role"),
        daily_seconds=locale_str("Per day"),
        monthly_seconds=locale_str("Per month"),
    )
    async def role_limit(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        daily_seconds: Seconds | None = None,
        monthly_seconds: Seconds | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(
            interaction,
            self.service.role_limit(
                guild_id,
                actor,
                role.id,
                daily_seconds=daily_seconds,
                monthly_seconds=monthly_seconds,
            ),
        )

    @role.command(name="clear", description=locale_str("Remove a role's limits"))
    @app_commands.describe(role=locale_str("The role"))
    async def role_clear(self, interaction: discord.Interaction, role: discord.Role) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.role_clear(guild_id, actor, role.id))

    # --- channels ------------------------------------------------------------------------

    @channels.command(
        name="allow", description=locale_str("Allow /edit in a channel (limits it to the list)")
    )
    @app_commands.describe(channel=locale_str("The channel"))
    async def channels_allow(
        self, interaction: discord.Interaction, channel: RuledChannel
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.channels_allow(guild_id, actor, channel.id))

    @channels.command(name="deny", description=locale_str("Refuse /edit in a channel"))
    @app_commands.describe(channel=locale_str("The channel"))
    async def channels_deny(
        self, interaction: discord.Interaction, channel: RuledChannel
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.channels_deny(guild_id, actor, channel.id))

    @channels.command(
        name="remove", description=locale_str("Take a channel off the allow and deny lists")
    )
    @app_commands.describe(channel=locale_str("The channel"))
    async def channels_remove(
        self, interaction: discord.Interaction, channel: RuledChannel
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.channels_remove(guild_id, actor, channel.id))

    @channels.command(name="list", description=locale_str("Where /edit may be used"))
    async def channels_list(self, interaction: discord.Interaction) -> None:
        guild_id, _ = self._ids(interaction)
        await self._reply(interaction, self.service.channels_list(guild_id), render.channels_text)

    # --- jobs ----------------------------------------------------------------------------

    @jobs.command(
        name="list", description=locale_str("Recent edits, optionally by state or member")
    )
    @app_commands.describe(
        state=locale_str("Only jobs in this state"), member=locale_str("Only this member's jobs")
    )
    async def jobs_list(
        self,
        interaction: discord.Interaction,
        state: Literal[
            "submitted",
            "submission_unknown",
            "downloading",
            "archived",
            "delivered",
            "failed",
            "rejected",
        ]
        | None = None,
        member: discord.Member | None = None,
    ) -> None:
        guild_id, _ = self._ids(interaction)
        listing = self.service.jobs_list(
            guild_id, state=state, user_id=member.id if member else None
        )
        await self._reply(interaction, listing, render.jobs_text)

    @jobs.command(name="redeliver", description=locale_str("Post a job's archived video again"))
    @app_commands.describe(job=locale_str("The job number"))
    async def jobs_redeliver(
        self, interaction: discord.Interaction, job: app_commands.Range[int, 1]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        redelivery = await self._work(
            interaction, self.service.jobs_redeliver(guild_id, actor, job)
        )
        if redelivery is not None:
            await self._send(interaction, speaker_for(interaction)(redelivery.text))

    @jobs.command(
        name="attach",
        description=locale_str("Give an uncertain job its task id from the EvoLink dashboard"),
    )
    @app_commands.describe(
        job=locale_str("The job number"),
        task=locale_str("The task id, as the dashboard shows it (task-unified-…)"),
    )
    async def jobs_attach(
        self,
        interaction: discord.Interaction,
        job: app_commands.Range[int, 1],
        task: app_commands.Range[str, 1, 200],
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.jobs_attach(guild_id, actor, job, task))

    @jobs.command(
        name="refetch", description=locale_str("Ask the provider again for a job's video")
    )
    @app_commands.describe(job=locale_str("The job number"))
    async def jobs_refetch(
        self, interaction: discord.Interaction, job: app_commands.Range[int, 1]
    ) -> None:
        guild_id, actor = self._ids(interaction)
        refetch = await self._work(interaction, self.service.jobs_refetch(guild_id, actor, job))
        if refetch is not None:
            await self._send(interaction, speaker_for(interaction)(refetch.text))

    @jobs.command(
        name="fail",
        description=locale_str("Stop a job the provider has not started and refund its seconds"),
    )
    @app_commands.describe(
        job=locale_str("The job number"), reason=locale_str("Shown to the member")
    )
    async def jobs_fail(
        self,
        interaction: discord.Interaction,
        job: app_commands.Range[int, 1],
        reason: app_commands.Range[str, 1, 300],
    ) -> None:
        guild_id, actor = self._ids(interaction)
        failed = await self._work(interaction, self.service.jobs_fail(guild_id, actor, job, reason))
        if failed is not None:
            await self._send(interaction, speaker_for(interaction)(failed.text))

    # --- reports and switches ------------------------------------------------------------

    @app_commands.command(
        name="usage", description=locale_str("Who spent what, with a CSV of every job")
    )
    @app_commands.describe(period=locale_str("The calendar period (UTC); default: this month"))
    async def usage(
        self,
        interaction: discord.Interaction,
        period: Literal["day", "week", "month"] | None = None,
    ) -> None:
        guild_id, _ = self._ids(interaction)
        say = speaker_for(interaction)
        report = await self._work(interaction, self.service.usage(
            guild_id, period, say=say, member_names=partial(display_names, interaction.guild)
        ))
        if report is None:
            return
        csv_file = discord.File(io.BytesIO(report.csv_text.encode()), report.csv_filename)
        chart = discord.File(io.BytesIO(report.chart_png), report.chart_filename)
        await self._send(
            interaction, render.usage_text(report, say), csv_file, chart
        )

    @app_commands.command(name="pause", description=locale_str("Stop all new edits on this server"))
    @app_commands.describe(reason=locale_str("Shown to members who try /edit"))
    async def pause(
        self,
        interaction: discord.Interaction,
        reason: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.pause(guild_id, actor, reason))

    @app_commands.command(name="resume", description=locale_str("Allow new edits again"))
    async def resume(self, interaction: discord.Interaction) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(interaction, self.service.resume(guild_id, actor))

    @app_commands.command(name="audit", description=locale_str("The latest admin actions"))
    @app_commands.describe(limit=locale_str("How many (default 20)"))
    async def audit(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 1, 50] = 20
    ) -> None:
        guild_id, _ = self._ids(interaction)
        page = await self._work(interaction, self.service.audit(guild_id, limit))
        if page is None:
            return
        text, complete = render.audit_text(page, speaker_for(interaction))
        if complete:
            await self._send(interaction, text)
            return
        listing = io.BytesIO(audit_csv(page.entries).encode())
        await self._send(interaction, text, discord.File(listing, f"kling-audit-{guild_id}.csv"))

    @log_channel.command(
        name="set", description=locale_str("Mirror admin actions to a channel (empty: off)")
    )
    @app_commands.describe(channel=locale_str("The log channel; leave empty to stop mirroring"))
    async def log_channel_set(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(
            interaction,
            self.service.log_channel_set(guild_id, actor, channel.id if channel else None),
        )

    @moderator_role.command(
        name="set", description=locale_str("A role whose members may use /kling-admin")
    )
    @app_commands.describe(role=locale_str("The moderator role; leave empty to remove it"))
    async def moderator_role_set(
        self, interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        guild_id, actor = self._ids(interaction)
        await self._reply(
            interaction, self.service.moderator_role_set(guild_id, actor, role.id if role else None)
        )
