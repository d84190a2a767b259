"""Per-member and per-role moderation: reports, overrides, grants, resets, blocks."""

from __future__ import annotations

from collections.abc import Sequence

from bot.admin.base import AdminBase
from bot.admin.errors import AdminRefused
from bot.admin.models import BlockChanged, Change, OverrideChanged, UserReport
from bot.admin.validation import check_id, check_quota_values, clean_reason, in_range
from bot.i18n import N_, Text
from bot.jobs.policy import Windows
from storage.admin import LimitTable, NothingToChange
from storage.models import LimitOverride

RECENT_JOBS = 5


def _describe(who: Text | str, override: LimitOverride) -> Text:
    daily, monthly = override.daily_seconds, override.monthly_seconds
    return N_(
        "{who} limits: daily {daily}, monthly {monthly}.", who=who,
        daily=N_("{seconds} s", seconds=daily) if daily is not None else N_("not set"),
        monthly=N_("{seconds} s", seconds=monthly) if monthly is not None else N_("not set"),
    )


class MemberAdmin(AdminBase):
    async def user_show(
        self, guild_id: int, user_id: int, member_role_ids: Sequence[int] = ()
    ) -> UserReport:
        """Usage per window and every limit in force with its source, as /edit would see it.

        `member_role_ids` are the member's current roles (include the guild id for
        @everyone); tiers of roles the member lacks do not apply.
        """
        now = self._clock()
        windows = Windows.at(now)
        snapshot = await self._quota.snapshot(
            guild_id=guild_id, user_id=user_id, role_ids=list(member_role_ids),
            day_start=windows.day_start, month_start=windows.month_start,
            attempts_after=self.policy.attempts_after(now),
        )
        allowance = self.policy.allowance(snapshot, now)
        return UserReport(
            guild_id=guild_id,
            user_id=user_id,
            today=allowance.today,
            month=allowance.month,
            limits=allowance.limits,
            user_override=snapshot.user_override,
            role_overrides=snapshot.role_overrides,
            active_jobs=snapshot.active_jobs,
            cooldown_until=allowance.cooldown_until,
            attempts=allowance.attempts,
            blocked=snapshot.blocked,
            recent_jobs=await self._jobs.recent_for_user(guild_id, user_id, RECENT_JOBS),
        )

    async def _set_override(
        self, table: LimitTable, guild_id: int, actor_id: int, subject_id: int,
        daily_seconds: int | None, monthly_seconds: int | None,
    ) -> OverrideChanged:
        check_quota_values(
            self.ceilings, daily_seconds=daily_seconds, monthly_seconds=monthly_seconds
        )
        override, audit = await self._admin.set_limit(
            table, guild_id, subject_id, daily_seconds=daily_seconds,
            monthly_seconds=monthly_seconds, actor_id=actor_id, now=self._clock(),
        )
        who: Text | str = (f"<@{subject_id}>" if table == "user_limits"
                           else N_("Role {role}", role=f"<@&{subject_id}>"))
        return await self._mirrored(OverrideChanged(text=_describe(who, override), audit=audit,
                                                    override=override))

    async def user_limit(
        self,
        guild_id: int,
        actor_id: int,
        user_id: int,
        *,
        daily_seconds: int | None = None,
        monthly_seconds: int | None = None,
    ) -> OverrideChanged:
        """A personal limit, which beats every role tier; with no value, clear it."""
        check_id("member", user_id)
        if daily_seconds is None and monthly_seconds is None:
            try:
                audit = await self._admin.clear_limit(
                    "user_limits", guild_id, user_id, actor_id=actor_id, now=self._clock()
                )
            except NothingToChange:
                raise AdminRefused(N_(
                    "{member} has no personal limit to clear; give daily_seconds or "
                    "monthly_seconds to set one.", member=f"<@{user_id}>"
                )) from None
            message = N_("{member} has no personal limit any more; roles and server apply.",
                         member=f"<@{user_id}>")
            return await self._mirrored(OverrideChanged(text=message, audit=audit,
                                                        override=None))
        return await self._set_override(
            "user_limits", guild_id, actor_id, user_id, daily_seconds, monthly_seconds
        )

    async def user_grant(self, guild_id: int, actor_id: int, user_id: int, seconds: int) -> Change:
        """One-off extra seconds for today's and this month's windows."""
        check_id("member", user_id)
        in_range("seconds", seconds, self.ceilings.grant_seconds, low=1,
                 note=N_("the operator's daily ceiling"))
        audit = await self._quota.grant(
            guild_id, user_id, seconds, actor_id=actor_id, now=self._clock(), audit=True
        )
        assert audit is not None
        message = N_("Granted {member} {seconds} extra s for today and this month.",
                     member=f"<@{user_id}>", seconds=seconds)
        return await self._mirrored(Change(text=message, audit=audit))

    async def user_reset(self, guild_id: int, actor_id: int, user_id: int) -> Change:
        """Forget the member's usage so far in both windows (the server budget keeps it)."""
        check_id("member", user_id)
        audit = await self._quota.reset(
            guild_id, user_id, actor_id=actor_id, now=self._clock(), audit=True
        )
        assert audit is not None
        message = N_("{member}'s usage for today and this month starts from zero again.",
                     member=f"<@{user_id}>")
        return await self._mirrored(Change(text=message, audit=audit))

    async def user_block(
        self, guild_id: int, actor_id: int, user_id: int, reason: str | None = None
    ) -> BlockChanged:
        check_id("member", user_id)
        text = clean_reason(reason)
        blocked, audit = await self._admin.block(
            guild_id, user_id, reason=text, actor_id=actor_id, now=self._clock()
        )
        member = f"<@{user_id}>"
        message = (
            N_("{member} can no longer use video edits here: {reason}", member=member,
               reason=text) if text
            else N_("{member} can no longer use video edits here.", member=member)
        )
        return await self._mirrored(BlockChanged(text=message, audit=audit, blocked=blocked))

    async def user_unblock(self, guild_id: int, actor_id: int, user_id: int) -> BlockChanged:
        try:
            audit = await self._admin.unblock(
                guild_id, user_id, actor_id=actor_id, now=self._clock()
            )
        except NothingToChange:
            raise AdminRefused(N_("{member} is not blocked.", member=f"<@{user_id}>")) from None
        message = N_("{member} may use video edits again.", member=f"<@{user_id}>")
        return await self._mirrored(BlockChanged(text=message, audit=audit, blocked=None))

    async def role_limit(
        self,
        guild_id: int,
        actor_id: int,
        role_id: int,
        *,
        daily_seconds: int | None = None,
        monthly_seconds: int | None = None,
    ) -> OverrideChanged:
        """A tier: members get the most generous tier among their roles."""
        check_id("role", role_id)
        if daily_seconds is None and monthly_seconds is None:
            raise AdminRefused(N_(
                "Give daily_seconds or monthly_seconds (use `role clear` to remove a tier)."
            ))
        return await self._set_override(
            "role_limits", guild_id, actor_id, role_id, daily_seconds, monthly_seconds
        )

    async def role_clear(self, guild_id: int, actor_id: int, role_id: int) -> OverrideChanged:
        try:
            audit = await self._admin.clear_limit(
                "role_limits", guild_id, role_id, actor_id=actor_id, now=self._clock()
            )
        except NothingToChange:
            raise AdminRefused(
                N_("Role {role} has no limit tier.", role=f"<@&{role_id}>")
            ) from None
        message = N_("Role {role} no longer has a limit tier.", role=f"<@&{role_id}>")
        return await self._mirrored(OverrideChanged(text=message, audit=audit, override=None))
