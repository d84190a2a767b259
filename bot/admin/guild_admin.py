"""Server-wide moderation: limits, budget, kill switch, channels, roles of the bot, audit."""

from __future__ import annotations

from bot.admin.base import AdminBase
from bot.admin.errors import AdminRefused
from bot.admin.models import (
    AuditPage,
    BudgetChanged,
    BudgetView,
    ChannelsChanged,
    ChannelsView,
    GuildChanged,
    LimitsChanged,
    LimitsView,
)
from bot.admin.validation import (
    MAX_AUDIT_ENTRIES,
    check_guild_values,
    check_id,
    clean_reason,
    in_range,
)
from bot.i18n import N_, Text
from bot.jobs.models import Requester
from bot.jobs.policy import EffectiveLimits, Windows, is_moderator
from storage.admin import NothingToChange
from storage.models import ChannelRule, GuildSettings


def _server_limits(policy_limits: EffectiveLimits) -> Text:
    return N_(
        "Server limits are now: daily {daily} s, monthly {monthly} s, {running} at a time, "
        "cooldown {cooldown} s.", daily=policy_limits.daily.value,
        monthly=policy_limits.monthly.value, running=policy_limits.max_concurrent.value,
        cooldown=policy_limits.cooldown_s.value,
    )


class GuildAdmin(AdminBase):
    async def is_moderator(self, guild_id: int, member: Requester) -> bool:
        return is_moderator(await self._guilds.settings(guild_id), member)

    async def _budget(self, settings: GuildSettings) -> BudgetView:
        windows = Windows.at(self._clock())
        spent = await self._quota.guild_used(settings.guild_id, windows.month_start)
        budget = self._guild_limits(settings).guild_budget
        return BudgetView(
            budget=budget, spent_month=spent, remaining=max(budget.value - spent, 0),
            resets_at=windows.month_end,
        )

    async def _limits_view(self, settings: GuildSettings) -> LimitsView:
        return LimitsView(
            settings=settings,
            effective=self._guild_limits(settings),
            ceilings=self.ceilings,
            budget=await self._budget(settings),
            role_tiers=await self._admin.role_limits(settings.guild_id),
            provider_balance=await self._actions.provider_balance(),
        )

    async def limits_show(self, guild_id: int) -> LimitsView:
        return await self._limits_view(await self._guilds.settings(guild_id))

    async def limits_set(
        self,
        guild_id: int,
        actor_id: int,
        *,
        daily_seconds: int | None = None,
        monthly_seconds: int | None = None,
        max_concurrent: int | None = None,
        cooldown_seconds: int | None = None,
    ) -> LimitsChanged:
        """Set the server defaults; values not given stay as they are."""
        check_guild_values(
            self.ceilings, daily_seconds=daily_seconds, monthly_seconds=monthly_seconds,
            max_concurrent=max_concurrent, cooldown_seconds=cooldown_seconds,
        )
        given = {
            "daily_seconds": daily_seconds,
            "monthly_seconds": monthly_seconds,
            "max_concurrent": max_concurrent,
            "cooldown_s": cooldown_seconds,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        if not changes:
            raise AdminRefused(N_(
                "Give at least one of daily_seconds, monthly_seconds, max_concurrent "
                "or cooldown_seconds."
            ))
        settings, audit = await self._admin.update_guild(
            guild_id, changes, actor_id=actor_id, action="limits.set", now=self._clock()
        )
        view = await self._limits_view(settings)
        message = _server_limits(view.effective)
        return await self._mirrored(LimitsChanged(text=message, audit=audit, limits=view))

    async def budget_set(self, guild_id: int, actor_id: int, monthly_seconds: int) -> BudgetChanged:
        in_range("monthly_seconds", monthly_seconds, self.ceilings.monthly_budget)
        settings, audit = await self._admin.update_guild(
            guild_id, {"monthly_budget": monthly_seconds}, actor_id=actor_id,
            action="budget.set", now=self._clock(),
        )
        budget = await self._budget(settings)
        message = N_(
            "Monthly server budget set to {budget} s: {spent} s spent this month, {left} s "
            "left.", budget=budget.budget.value, spent=budget.spent_month, left=budget.remaining,
        )
        return await self._mirrored(BudgetChanged(text=message, audit=audit, budget=budget))

    async def pause(self, guild_id: int, actor_id: int, reason: str | None = None) -> GuildChanged:
        """The kill switch; pausing again only updates the reason members see."""
        text = clean_reason(reason)
        settings, audit = await self._admin.update_guild(
            guild_id, {"paused": True, "pause_reason": text}, actor_id=actor_id,
            action="pause", now=self._clock(),
        )
        message = (N_("Video edits are paused on this server: {reason}", reason=text) if text
                   else N_("Video edits are paused on this server."))
        return await self._mirrored(GuildChanged(text=message, audit=audit, settings=settings))

    async def resume(self, guild_id: int, actor_id: int) -> GuildChanged:
        if not (await self._guilds.settings(guild_id)).paused:
            raise AdminRefused(N_("Video edits are not paused on this server."))
        settings, audit = await self._admin.update_guild(
            guild_id, {"paused": False, "pause_reason": None}, actor_id=actor_id,
            action="resume", now=self._clock(),
        )
        message = N_("Video edits are running again on this server.")
        return await self._mirrored(GuildChanged(text=message, audit=audit, settings=settings))

    async def channels_list(self, guild_id: int) -> ChannelsView:
        rules = await self._guilds.channel_rules(guild_id)
        return ChannelsView(
            allowed=sorted(c for c, rule in rules.items() if rule is ChannelRule.ALLOW),
            denied=sorted(c for c, rule in rules.items() if rule is ChannelRule.DENY),
        )

    async def _channel_rule(
        self, guild_id: int, actor_id: int, channel_id: int, rule: ChannelRule
    ) -> ChannelsChanged:
        check_id("channel", channel_id)
        if (await self._guilds.channel_rules(guild_id)).get(channel_id) is rule:
            where = f"<#{channel_id}>"
            raise AdminRefused(
                N_("{channel} is already allowed.", channel=where) if rule is ChannelRule.ALLOW
                else N_("{channel} is already denied.", channel=where)
            )
        audit = await self._admin.set_channel_rule(
            guild_id, channel_id, rule, actor_id=actor_id, now=self._clock()
        )
        view = await self.channels_list(guild_id)
        if rule is ChannelRule.ALLOW:
            message = N_("Edits are allowed in {channel}; only allowed channels accept them.",
                         channel=f"<#{channel_id}>")
        else:
            message = N_("Edits are no longer allowed in {channel}.", channel=f"<#{channel_id}>")
        return await self._mirrored(ChannelsChanged(text=message, audit=audit, channels=view))

    async def channels_allow(
        self, guild_id: int, actor_id: int, channel_id: int
    ) -> ChannelsChanged:
        return await self._channel_rule(guild_id, actor_id, channel_id, ChannelRule.ALLOW)

    async def channels_deny(
        self, guild_id: int, actor_id: int, channel_id: int
    ) -> ChannelsChanged:
        return await self._channel_rule(guild_id, actor_id, channel_id, ChannelRule.DENY)

    async def channels_remove(
        self, guild_id: int, actor_id: int, channel_id: int
    ) -> ChannelsChanged:
        """Forget a channel's rule (take it off the allow- or deny-list)."""
        try:
            audit = await self._admin.remove_channel_rule(
                guild_id, channel_id, actor_id=actor_id, now=self._clock()
            )
        except NothingToChange:
            raise AdminRefused(
                N_("{channel} is on neither list.", channel=f"<#{channel_id}>")
            ) from None
        view = await self.channels_list(guild_id)
        message = N_("{channel} is on neither list any more.", channel=f"<#{channel_id}>")
        return await self._mirrored(ChannelsChanged(text=message, audit=audit, channels=view))

    async def moderator_role_set(
        self, guild_id: int, actor_id: int, role_id: int | None
    ) -> GuildChanged:
        """Members with this role pass the runtime check; None leaves Manage Server only."""
        if role_id is not None:
            check_id("role", role_id)
        settings, audit = await self._admin.update_guild(
            guild_id, {"moderator_role_id": role_id}, actor_id=actor_id,
            action="moderator_role.set", now=self._clock(),
            target=f"role:{role_id}" if role_id else None,
        )
        message = (
            N_("Members with {role} may use /kling-admin.", role=f"<@&{role_id}>") if role_id
            else N_("Only members with Manage Server may use /kling-admin.")
        )
        return await self._mirrored(GuildChanged(text=message, audit=audit, settings=settings))

    async def log_channel_set(
        self, guild_id: int, actor_id: int, channel_id: int | None
    ) -> GuildChanged:
        """Mirror audit entries to this channel from now on; None stops mirroring."""
        if channel_id is not None:
            check_id("channel", channel_id)
        previous = (await self._guilds.settings(guild_id)).log_channel_id
        settings, audit = await self._admin.update_guild(
            guild_id, {"log_channel_id": channel_id}, actor_id=actor_id,
            action="log_channel.set", now=self._clock(),
            target=f"channel:{channel_id}" if channel_id else None,
        )
        message = (
            N_("Admin actions will be logged in {channel}.", channel=f"<#{channel_id}>")
            if channel_id else N_("Admin actions are no longer mirrored to a channel.")
        )
        change = GuildChanged(text=message, audit=audit, settings=settings)
        return await self._mirrored(change, channel_id or previous)

    async def audit(self, guild_id: int, limit: int = 20) -> AuditPage:
        in_range("limit", limit, MAX_AUDIT_ENTRIES, low=1)
        return AuditPage(entries=await self._guilds.audit_entries(guild_id, limit))
