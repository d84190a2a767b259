from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.jobs.errors import EditRefused
from bot.jobs.policy import QuotaDefaults, QuotaPolicy, Windows
from storage.models import BlockedUser, ChannelRule, GuildSettings, LimitOverride, UsageSnapshot

NOW = datetime(2026, 11, 29, 15, 30, tzinfo=UTC).timestamp()
DEFAULTS = QuotaDefaults(
    daily_seconds=60,
    monthly_seconds=600,
    max_concurrent=2,
    cooldown_s=30,
    guild_monthly_budget=6000,
    ceiling_daily_seconds=3600,
    ceiling_monthly_seconds=36000,
    ceiling_max_concurrent=10,
    attempt_limit=10,
    attempt_window_s=600,
)


def snapshot(**changes: object) -> UsageSnapshot:
    base = UsageSnapshot(
        used_today=0,
        used_month=0,
        granted_today=0,
        granted_month=0,
        guild_used_month=0,
        active_jobs=0,
        last_submit_at=None,
        blocked=None,
        guild=GuildSettings(guild_id=1),
        user_override=None,
        role_overrides=[],
        channel_rules={},
    )
    return base.model_copy(update=changes)


def refusal(snap: UsageSnapshot, seconds: int = 10, channel: int = 5) -> EditRefused:
    with pytest.raises(EditRefused) as caught:
        QuotaPolicy(DEFAULTS).check(snap, channel_id=channel, quota_seconds=seconds, now=NOW)
    return caught.value


def allowed(snap: UsageSnapshot, seconds: int = 10, channel: int = 5) -> None:
    QuotaPolicy(DEFAULTS).check(snap, channel_id=channel, quota_seconds=seconds, now=NOW)


def test_windows_are_utc_calendar_day_and_month() -> None:
    windows = Windows.at(NOW)
    assert datetime.fromtimestamp(windows.day_start, UTC) == datetime(2026, 11, 29, tzinfo=UTC)
    assert datetime.fromtimestamp(windows.day_end, UTC) == datetime(2026, 11, 30, tzinfo=UTC)
    assert datetime.fromtimestamp(windows.month_start, UTC) == datetime(2026, 11, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(windows.month_end, UTC) == datetime(2026, 12, 1, tzinfo=UTC)


def test_daily_limit_counts_grants_and_says_what_is_left() -> None:
    refused = refusal(snapshot(used_today=55), seconds=10)
    assert refused.code == "daily_quota" and "5 s of editing left today" in refused.reason
    assert refused.retry_at == Windows.at(NOW).day_end
    allowed(snapshot(used_today=55, granted_today=5), seconds=10)


def test_monthly_limit_and_guild_budget() -> None:
    assert refusal(snapshot(used_month=595)).code == "monthly_quota"
    assert refusal(snapshot(guild_used_month=5995)).code == "guild_budget"


def admission_refusal(snap: UsageSnapshot) -> EditRefused:
    with pytest.raises(EditRefused) as caught:
        QuotaPolicy(DEFAULTS).admit(snap, channel_id=5, quota_seconds=3, now=NOW)
    return caught.value


def test_running_edits_are_counted_at_admission_only() -> None:
    assert admission_refusal(snapshot(active_jobs=2)).code == "too_many_jobs"
    QuotaPolicy(DEFAULTS).admit(snapshot(active_jobs=1), channel_id=5, quota_seconds=3, now=NOW)
    # The reserve that follows counts the job itself among the running ones: no refusal.
    allowed(snapshot(active_jobs=2))


def test_the_attempt_limit_waits_for_the_limit_th_newest_refusal_to_leave_the_window() -> None:
    refusals = [NOW - 10.0 * n for n in range(1, 13)]  # newest first
    refused = admission_refusal(snapshot(refused_attempts=refusals[:10]))
    assert refused.code == "attempt_limit" and refused.retry_at == NOW - 100 + 600
    assert "10 edits refused in the last 10 minutes" in refused.reason
    assert admission_refusal(snapshot(refused_attempts=refusals)).retry_at == NOW - 100 + 600
    QuotaPolicy(DEFAULTS).admit(
        snapshot(refused_attempts=refusals[:9]), channel_id=5, quota_seconds=3, now=NOW
    )
    unlimited = QuotaPolicy(DEFAULTS.model_copy(update={"attempt_limit": 0}))
    unlimited.admit(snapshot(refused_attempts=refusals), channel_id=5, quota_seconds=3, now=NOW)
    # Blocks and channel rules are said first: waiting would not help with those.
    blocked = BlockedUser(guild_id=1, user_id=7, reason=None, blocked_by=9, at=NOW)
    assert admission_refusal(snapshot(refused_attempts=refusals, blocked=blocked)).code == (
        "blocked"
    )


def test_cooldown() -> None:
    refused = refusal(snapshot(last_submit_at=NOW - 10))
    assert refused.code == "cooldown" and refused.retry_at == NOW + 20
    allowed(snapshot(last_submit_at=NOW - 30))


def test_blocked_paused_and_channel_rules_come_first() -> None:
    blocked = BlockedUser(guild_id=1, user_id=7, reason="spam", blocked_by=9, at=NOW)
    assert "Reason: spam" in refusal(snapshot(blocked=blocked)).reason
    paused = GuildSettings(guild_id=1, paused=True, pause_reason="maintenance")
    assert refusal(snapshot(guild=paused)).reason.endswith(": maintenance")
    rules = {6: ChannelRule.ALLOW}
    refused = refusal(snapshot(channel_rules=rules), channel=5)
    assert refused.code == "channel_not_allowed" and "<#6>" in refused.reason
    allowed(snapshot(channel_rules=rules), channel=6)
    assert refusal(snapshot(channel_rules={5: ChannelRule.DENY}), channel=5).code == (
        "channel_not_allowed"
    )


def test_most_generous_role_wins_and_user_override_beats_roles() -> None:
    roles = [
        LimitOverride(subject_id=11, daily_seconds=20, monthly_seconds=None),
        LimitOverride(subject_id=12, daily_seconds=300, monthly_seconds=None),
    ]
    limits = QuotaPolicy(DEFAULTS).limits(snapshot(role_overrides=roles))
    assert (limits.daily.value, limits.daily.source) == (300, "role 12")
    assert limits.monthly.source == "bot default"
    user = LimitOverride(subject_id=7, daily_seconds=15, monthly_seconds=None)
    limits = QuotaPolicy(DEFAULTS).limits(snapshot(role_overrides=roles, user_override=user))
    assert (limits.daily.value, limits.daily.source) == (15, "user override")


def test_overrides_never_exceed_the_operator_ceiling() -> None:
    guild = GuildSettings(guild_id=1, daily_seconds=99999)
    assert QuotaPolicy(DEFAULTS).limits(snapshot(guild=guild)).daily.value == 3600


def test_the_check_before_download_speaks_of_the_minimum_cost() -> None:
    with pytest.raises(EditRefused) as caught:
        QuotaPolicy(DEFAULTS).check(
            snapshot(used_today=59), channel_id=5, quota_seconds=3, now=NOW, estimate=True
        )
    assert "an edit costs at least 3 s" in caught.value.reason
