"""Who may spend how many billed seconds, where and when: pure rules over a UsageSnapshot."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from bot.i18n import N_, Text
from bot.jobs.errors import EditRefused
from bot.jobs.messages import attempt_limit_reached
from bot.jobs.models import Requester
from storage.models import ChannelRule, GuildSettings, UsageSnapshot


def is_moderator(guild: GuildSettings, member: Requester) -> bool:
    """Manage Server always qualifies; otherwise the server's moderator role does."""
    if member.manages_guild:
        return True
    return guild.moderator_role_id is not None and guild.moderator_role_id in member.role_ids


class QuotaDefaults(BaseModel):
    """Operator defaults and hard ceilings (from Settings); guilds override within ceilings."""

    daily_seconds: int
    monthly_seconds: int
    max_concurrent: int
    cooldown_s: int
    guild_monthly_budget: int
    ceiling_daily_seconds: int
    ceiling_monthly_seconds: int
    ceiling_max_concurrent: int
    # Refused attempts a member may make per window before new edits wait (0: no limit).
    attempt_limit: int
    attempt_window_s: int


class Limit(BaseModel):
    value: int
    source: str  # "user override", "role <id>", "server setting", "bot default"


class EffectiveLimits(BaseModel):
    daily: Limit
    monthly: Limit
    max_concurrent: Limit
    cooldown_s: Limit
    guild_budget: Limit


class UsageWindow(BaseModel):
    """A member's spend in one window: billed net of refunds, grants on top of the limit."""

    used: int
    granted: int
    limit: Limit
    resets_at: float

    @property
    def left(self) -> int:
        """Seconds still spendable in this window (never negative)."""
        return max(self.limit.value + self.granted - self.used, 0)


class Attempts(BaseModel):
    """A member's refused attempts (each cost the bot a download) in the attempt window."""

    limit: int  # 0: no limit
    window_s: int
    refused: int
    wait_until: float | None  # at the limit: when the next attempt is let through


class Allowance(BaseModel):
    """What a member may still spend, as /quota and the moderators' user report show it."""

    limits: EffectiveLimits
    today: UsageWindow
    month: UsageWindow
    active_jobs: int
    guild_used_month: int
    cooldown_until: float | None  # None when the member may submit now
    attempts: Attempts


class Windows(BaseModel):
    """UTC calendar windows: usage resets at midnight UTC and on the 1st of the month."""

    day_start: float
    day_end: float
    month_start: float
    month_end: float

    @classmethod
    def at(cls, now: float) -> Windows:
        moment = datetime.fromtimestamp(now, UTC)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        month = day.replace(day=1)
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        return cls(
            day_start=day.timestamp(),
            day_end=(day + timedelta(days=1)).timestamp(),
            month_start=month.timestamp(),
            month_end=(month + timedelta(days=days_in_month)).timestamp(),
        )


def _pick(
    field: str, snapshot: UsageSnapshot, guild_value: int | None, default: int, ceiling: int
) -> Limit:
    user = snapshot.user_override
    if user is not None and getattr(user, field) is not None:
        return Limit(value=min(getattr(user, field), ceiling), source="user override")
    role_values = [
        (getattr(role, field), role.subject_id)
        for role in snapshot.role_overrides
        if getattr(role, field) is not None
    ]
    if role_values:
        value, role_id = max(role_values)  # the most generous role wins
        return Limit(value=min(value, ceiling), source=f"role {role_id}")
    if guild_value is not None:
        return Limit(value=min(guild_value, ceiling), source="server setting")
    return Limit(value=min(default, ceiling), source="bot default")


class QuotaPolicy:
    def __init__(self, defaults: QuotaDefaults) -> None:
        self.defaults = defaults

    def limits(self, snapshot: UsageSnapshot) -> EffectiveLimits:
        d, guild = self.defaults, snapshot.guild
        return EffectiveLimits(
            daily=_pick(
                "daily_seconds", snapshot, guild.daily_seconds, d.daily_seconds,
                d.ceiling_daily_seconds,
            ),
            monthly=_pick(
                "monthly_seconds", snapshot, guild.monthly_seconds, d.monthly_seconds,
                d.ceiling_monthly_seconds,
            ),
            max_concurrent=Limit(
                value=min(
                    guild.max_concurrent if guild.max_concurrent is not None
                    else d.max_concurrent,
                    d.ceiling_max_concurrent,
                ),
                source="server setting" if guild.max_concurrent is not None else "bot default",
            ),
            cooldown_s=Limit(
                value=guild.cooldown_s if guild.cooldown_s is not None else d.cooldown_s,
                source="server setting" if guild.cooldown_s is not None else "bot default",
            ),
            guild_budget=Limit(
                value=guild.monthly_budget if guild.monthly_budget is not None
                else d.guild_monthly_budget,
                source="server setting" if guild.monthly_budget is not None else "bot default",
            ),
        )

    def allowance(self, snapshot: UsageSnapshot, now: float) -> Allowance:
        limits = self.limits(snapshot)
        windows = Windows.at(now)
        ready_at = (
            snapshot.last_submit_at + limits.cooldown_s.value
            if snapshot.last_submit_at is not None else None
        )
        return Allowance(
            limits=limits,
            today=UsageWindow(used=snapshot.used_today, granted=snapshot.granted_today,
                              limit=limits.daily, resets_at=windows.day_end),
            month=UsageWindow(used=snapshot.used_month, granted=snapshot.granted_month,
                              limit=limits.monthly, resets_at=windows.month_end),
            active_jobs=snapshot.active_jobs,
            guild_used_month=snapshot.guild_used_month,
            cooldown_until=ready_at if ready_at is not None and ready_at > now else None,
            attempts=self.attempts(snapshot),
        )

    def attempts(self, snapshot: UsageSnapshot) -> Attempts:
        limit, window = self.defaults.attempt_limit, self.defaults.attempt_window_s
        refused = snapshot.refused_attempts  # newest first
        at_limit = bool(limit) and len(refused) >= limit
        return Attempts(
            limit=limit, window_s=window, refused=len(refused),
            # When the limit-th newest refusal leaves the window, one fewer than the limit
            # remain: the next attempt is let through.
            wait_until=refused[limit - 1] + window if at_limit else None,
        )

    def check_access(
        self, snapshot: UsageSnapshot, channel_id: int, parent_id: int | None = None
    ) -> None:
        """Blocks, pause and channel rules: refusals that no amount of quota changes.

        In a thread (`parent_id` is its channel: a text channel's thread, a forum's post),
        a rule set on the thread itself decides, else its channel's rule does.
        """
        if snapshot.blocked is not None:
            why = snapshot.blocked.reason
            raise EditRefused("blocked", N_(
                "You are not allowed to use video edits here. Reason: {reason}", reason=why
            ) if why else N_("You are not allowed to use video edits here."))
        if snapshot.guild.paused:
            why = snapshot.guild.pause_reason
            raise EditRefused("paused", N_(
                "Video edits are paused on this server: {reason}", reason=why
            ) if why else N_("Video edits are paused on this server."))
        rules = snapshot.channel_rules
        allowed = {cid for cid, rule in rules.items() if rule is ChannelRule.ALLOW}
        rule = rules.get(channel_id) or (rules.get(parent_id) if parent_id else None)
        if rule is ChannelRule.DENY or (allowed and rule is not ChannelRule.ALLOW):
            where = ", ".join(f"<#{cid}>" for cid in sorted(allowed))
            raise EditRefused("channel_not_allowed", N_(
                "Video edits are not allowed in this channel. Try {channels}.", channels=where
            ) if where else N_("Video edits are not allowed in this channel."))

    def attempts_after(self, now: float) -> float:
        """Refused attempts made after this moment count against the attempt limit."""
        return now - self.defaults.attempt_window_s

    def admit(self, snapshot: UsageSnapshot, *, channel_id: int, quota_seconds: int,
              now: float, parent_id: int | None = None) -> None:
        """Raise EditRefused unless a new edit may start: checked, before any download, in
        the transaction that creates its job (`snapshot.active_jobs` does not include it).

        Beyond `check`, admission alone counts the member's running edits (the new job
        holds its slot from creation, so later checks must not count it again) and refused
        attempts. The attempt limit applies to moderators too: a loop of bad uploads costs
        the bot the same whoever sends it, and a moderator's reset clears the count.
        """
        self.check_access(snapshot, channel_id, parent_id)
        attempts = self.attempts(snapshot)
        if attempts.wait_until is not None:
            raise EditRefused(
                "attempt_limit", attempt_limit_reached(attempts.limit, attempts.window_s),
                retry_at=attempts.wait_until,
            )
        running = self.limits(snapshot).max_concurrent.value
        if snapshot.active_jobs >= running:
            raise EditRefused(
                "too_many_jobs",
                N_("You already have {running} edit(s) running; the limit is {limit}. Wait "
                   "for one to finish.", running=snapshot.active_jobs, limit=running),
            )
        self.check(snapshot, channel_id=channel_id, parent_id=parent_id,
                   quota_seconds=quota_seconds, now=now, estimate=True)

    def check(self, snapshot: UsageSnapshot, *, channel_id: int, quota_seconds: int,
              now: float, estimate: bool = False, parent_id: int | None = None) -> None:
        """Raise EditRefused unless `quota_seconds` more may be spent now.

        Called at admission with the model's minimum billing (`estimate=True`), and
        again inside the reserving transaction with the clip's real billing; both counted
        as ModelSpec.quota_seconds (the quota's unit, whatever the model).
        """
        cost = (N_("an edit costs at least {seconds} s", seconds=quota_seconds) if estimate
                else N_("this clip counts as {seconds} s", seconds=quota_seconds))
        self.check_access(snapshot, channel_id, parent_id)
        allowance = self.allowance(snapshot, now)
        limits = allowance.limits
        if allowance.cooldown_until is not None:
            ready = allowance.cooldown_until
            raise EditRefused(
                "cooldown",
                N_("Please wait {seconds} s between edits.", seconds=round(ready - now)),
                retry_at=ready,
            )
        self._check_window("daily", allowance.today, quota_seconds, cost, N_(
            "You have {left} s of editing left today (limit {limit} s); {cost}.",
            left=allowance.today.left, limit=allowance.today.limit.value, cost=cost))
        self._check_window("monthly", allowance.month, quota_seconds, cost, N_(
            "You have {left} s of editing left this month (limit {limit} s); {cost}.",
            left=allowance.month.left, limit=allowance.month.limit.value, cost=cost))
        budget_left = limits.guild_budget.value - snapshot.guild_used_month
        if quota_seconds > budget_left:
            raise EditRefused(
                "guild_budget",
                N_("This server has used its monthly budget of {budget} s ({left} s left; "
                   "{cost}).", budget=limits.guild_budget.value, left=max(budget_left, 0),
                   cost=cost),
                retry_at=allowance.month.resets_at,
            )

    @staticmethod
    def _check_window(
        name: str, window: UsageWindow, needed: int, cost: Text, refusal: Text
    ) -> None:
        if needed > window.left:
            raise EditRefused(f"{name}_quota", refusal, retry_at=window.resets_at)
