"""AdminService over real SQLite: settings, tiers, members, channels, audit and refusals."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.admin import AdminRefused
from bot.jobs.errors import EditRefused
from bot.jobs.models import Requester
from bot.media.prober import Prober
from storage.database import Database
from storage.models import JobState, LedgerKind, UsageSnapshot
from tests.integration.admin_harness import (
    ALICE,
    BOB,
    CHANNEL,
    DAY,
    GUILD,
    MOD,
    NOW,
    Harness,
    admin_harness,
)

# Moderation reads and writes every table: on both engines.
pytestmark = pytest.mark.both_engines

ROLE_SMALL, ROLE_BIG = 500, 501


@pytest.fixture
async def h(db: Database, tmp_path: Path, prober: Prober) -> AsyncIterator[Harness]:
    async with admin_harness(db, tmp_path, prober) as harness:
        yield harness


async def snapshot(h: Harness, user_id: int, roles: list[int]) -> UsageSnapshot:
    return await h.quota.snapshot(
        guild_id=GUILD, user_id=user_id, role_ids=roles, day_start=NOW - 3600,
        month_start=NOW - 14 * DAY,
    )


def member(*role_ids: int, manages_guild: bool = False) -> Requester:
    return Requester(user_id=ALICE, role_ids=list(role_ids), manages_guild=manages_guild)


async def test_moderators_are_manage_guild_or_the_configured_role(h: Harness) -> None:
    s = h.service
    assert await s.is_moderator(GUILD, member(manages_guild=True))
    assert not await s.is_moderator(GUILD, member(ROLE_SMALL))
    change = await s.moderator_role_set(GUILD, MOD, ROLE_SMALL)
    assert change.audit.action == "moderator_role.set" and change.audit.target == "role:500"
    assert await s.is_moderator(GUILD, member(ROLE_BIG, ROLE_SMALL))
    assert not await s.is_moderator(GUILD, member(ROLE_BIG))
    await s.moderator_role_set(GUILD, MOD, None)
    assert not await s.is_moderator(GUILD, member(ROLE_SMALL))


async def test_limits_show_then_set_reports_values_sources_and_audits(h: Harness) -> None:
    view = await h.service.limits_show(GUILD)
    assert view.effective.daily.value == 60 and view.effective.daily.source == "bot default"
    assert view.ceilings.daily_seconds == 3600 and view.budget.budget.value == 6000

    change = await h.service.limits_set(GUILD, MOD, daily_seconds=120, cooldown_seconds=0)
    limits = change.limits.effective
    assert (limits.daily.value, limits.daily.source) == (120, "server setting")
    assert (limits.cooldown_s.value, limits.monthly.source) == (0, "bot default")
    assert "daily 120 s" in change.message
    assert change.audit.action == "limits.set" and change.audit.actor_id == MOD
    assert change.audit.detail is not None
    assert json.loads(change.audit.detail) == {
        "before": {"daily_seconds": None, "cooldown_s": None},
        "after": {"daily_seconds": 120, "cooldown_s": 0},
    }
    # Values not given stay as they were.
    again = await h.service.limits_set(GUILD, MOD, max_concurrent=4)
    assert again.limits.settings.daily_seconds == 120 and again.limits.settings.max_concurrent == 4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("daily_seconds", 3601, "daily_seconds must be between 0 and 3600 (the operator's ceil"),
        ("daily_seconds", -1, "daily_seconds must be between 0 and 3600"),
        ("monthly_seconds", 36001, "monthly_seconds must be between 0 and 36000 (the operator's"),
        ("max_concurrent", 11, "max_concurrent must be between 0 and 10 (the operator's ceiling)"),
        ("cooldown_seconds", 86401, "cooldown_seconds must be between 0 and 86400"),
        ("cooldown_seconds", -5, "cooldown_seconds must be between 0 and 86400"),
    ],
)
async def test_limits_out_of_range_are_refused_and_nothing_is_written(
    h: Harness, field: str, value: int, message: str
) -> None:
    with pytest.raises(AdminRefused, match=re.escape(message)):
        await h.service.limits_set(GUILD, MOD, **{field: value})
    assert await h.rows("SELECT * FROM guild_settings") == []
    assert await h.audit_count() == 0


async def test_limits_set_without_any_value_is_refused(h: Harness) -> None:
    with pytest.raises(AdminRefused, match="at least one of daily_seconds"):
        await h.service.limits_set(GUILD, MOD)
    assert await h.audit_count() == 0


async def test_budget_is_shown_with_this_months_spend(h: Harness) -> None:
    await h.job(JobState.DELIVERED, seconds=10, ledger=LedgerKind.SETTLE)
    await h.job(JobState.FAILED, seconds=7, ledger=LedgerKind.REFUND)
    await h.job(JobState.SUBMITTED, seconds=5)  # reserved, counts against the budget
    change = await h.service.budget_set(GUILD, MOD, 100)
    assert (change.budget.budget.value, change.budget.budget.source) == (100, "server setting")
    assert (change.budget.spent_month, change.budget.remaining) == (15, 85)
    assert "15 s spent this month, 85 s left" in change.message
    assert (await h.service.limits_show(GUILD)).budget.spent_month == 15
    with pytest.raises(AdminRefused, match="monthly_seconds must be between 0 and 10000000"):
        await h.service.budget_set(GUILD, MOD, 10_000_001)
    with pytest.raises(AdminRefused, match="between 0 and 10000000"):
        await h.service.budget_set(GUILD, MOD, -1)
    assert await h.audit_count() == 1


async def test_most_generous_role_wins_and_a_personal_limit_beats_roles(h: Harness) -> None:
    s = h.service
    await s.limits_set(GUILD, MOD, daily_seconds=20, cooldown_seconds=0)
    await s.role_limit(GUILD, MOD, ROLE_SMALL, daily_seconds=30)
    await s.role_limit(GUILD, MOD, ROLE_BIG, daily_seconds=50, monthly_seconds=900)
    both = await snapshot(h, ALICE, [ROLE_SMALL, ROLE_BIG])
    limits = s.policy.limits(both)
    assert (limits.daily.value, limits.daily.source) == (50, f"role {ROLE_BIG}")
    s.policy.check(both, channel_id=CHANNEL, quota_seconds=45, now=NOW)
    small = await snapshot(h, ALICE, [ROLE_SMALL])
    with pytest.raises(EditRefused) as refused:
        s.policy.check(small, channel_id=CHANNEL, quota_seconds=45, now=NOW)
    assert refused.value.code == "daily_quota"

    await s.user_limit(GUILD, MOD, ALICE, daily_seconds=10)
    overridden = await snapshot(h, ALICE, [ROLE_SMALL, ROLE_BIG])
    assert s.policy.limits(overridden).daily.source == "user override"
    assert s.policy.limits(overridden).monthly.source == f"role {ROLE_BIG}"
    with pytest.raises(EditRefused, match="limit 10 s"):
        s.policy.check(overridden, channel_id=CHANNEL, quota_seconds=15, now=NOW)

    report = await s.user_show(GUILD, ALICE, [ROLE_SMALL, ROLE_BIG])
    assert report.limits.daily.source == "user override"
    assert [r.subject_id for r in report.role_overrides] == [ROLE_SMALL, ROLE_BIG]
    tiers = (await s.limits_show(GUILD)).role_tiers
    assert [(t.subject_id, t.daily_seconds) for t in tiers] == [(ROLE_SMALL, 30), (ROLE_BIG, 50)]


async def test_overrides_are_capped_by_the_ceilings(h: Harness) -> None:
    with pytest.raises(AdminRefused, match="the operator's ceiling"):
        await h.service.role_limit(GUILD, MOD, ROLE_BIG, daily_seconds=3601)
    with pytest.raises(AdminRefused, match="monthly_seconds must be between 0 and 36000"):
        await h.service.user_limit(GUILD, MOD, ALICE, monthly_seconds=50_000)
    assert await h.rows("SELECT * FROM role_limits") == []
    assert await h.rows("SELECT * FROM user_limits") == []
    assert await h.audit_count() == 0


async def test_user_limit_updates_partially_and_clears(h: Harness) -> None:
    s = h.service
    first = await s.user_limit(GUILD, MOD, ALICE, daily_seconds=30)
    assert first.override is not None and first.override.monthly_seconds is None
    second = await s.user_limit(GUILD, MOD, ALICE, monthly_seconds=300)
    assert second.override is not None
    assert (second.override.daily_seconds, second.override.monthly_seconds) == (30, 300)
    assert second.audit.detail is not None
    assert json.loads(second.audit.detail)["before"] == {
        "daily_seconds": 30, "monthly_seconds": None,
    }
    cleared = await s.user_limit(GUILD, MOD, ALICE)
    assert cleared.override is None and cleared.audit.action == "user.limit.clear"
    assert await h.rows("SELECT * FROM user_limits") == []
    with pytest.raises(AdminRefused, match="has no personal limit to clear"):
        await s.user_limit(GUILD, MOD, ALICE)
    assert await h.audit_count() == 3


async def test_role_limit_needs_a_value_and_clear_needs_a_tier(h: Harness) -> None:
    with pytest.raises(AdminRefused, match="use `role clear`"):
        await h.service.role_limit(GUILD, MOD, ROLE_BIG)
    with pytest.raises(AdminRefused, match="has no limit tier"):
        await h.service.role_clear(GUILD, MOD, ROLE_BIG)
    await h.service.role_limit(GUILD, MOD, ROLE_BIG, monthly_seconds=900)
    change = await h.service.role_clear(GUILD, MOD, ROLE_BIG)
    assert change.audit.action == "role.limit.clear" and change.audit.target == "role:501"
    assert await h.rows("SELECT * FROM role_limits") == []


async def test_user_show_reports_usage_limits_jobs_and_block(h: Harness) -> None:
    await h.service.user_grant(GUILD, MOD, ALICE, 15)
    await h.job(JobState.DELIVERED, seconds=10, at=NOW - 2 * DAY, ledger=LedgerKind.SETTLE)
    await h.job(JobState.SUBMITTED, seconds=8, at=NOW - 10)
    await h.job(JobState.FAILED, seconds=5, at=NOW - 5, ledger=LedgerKind.REFUND)
    await h.service.user_block(GUILD, MOD, ALICE, "spamming")
    report = await h.service.user_show(GUILD, ALICE)
    assert (report.today.used, report.today.granted, report.today.left) == (8, 15, 67)
    assert (report.month.used, report.month.left) == (18, 597)
    assert report.today.limit.source == "bot default" and report.limits.max_concurrent.value == 2
    assert report.active_jobs == 1
    assert report.cooldown_until == NOW + 25  # last reservation 5 s ago, cooldown 30 s
    assert report.blocked is not None and report.blocked.reason == "spamming"
    assert [j.state for j in report.recent_jobs] == [
        JobState.FAILED, JobState.SUBMITTED, JobState.DELIVERED,
    ]
    assert (await h.service.user_show(GUILD, BOB)).recent_jobs == []


async def test_grant_and_reset_are_audited_and_bounded(h: Harness) -> None:
    s = h.service
    await h.job(JobState.SUBMITTED, seconds=10, at=NOW - 60)
    grant = await s.user_grant(GUILD, MOD, ALICE, 20)
    assert grant.audit.action == "user.grant" and grant.audit.target == f"user:{ALICE}"
    ledger = await h.rows("SELECT kind, seconds, actor_id FROM quota_ledger WHERE kind = 'grant'")
    assert ledger == [{"kind": "grant", "seconds": 20, "actor_id": MOD}]
    for bad in (0, -5, 3601):
        with pytest.raises(AdminRefused, match="seconds must be between 1 and 3600"):
            await s.user_grant(GUILD, MOD, ALICE, bad)
    h.clock.now = NOW + 1
    reset = await s.user_reset(GUILD, MOD, ALICE)
    assert reset.audit.action == "user.reset"
    report = await s.user_show(GUILD, ALICE)
    assert (report.today.used, report.month.used) == (0, 0)
    # The server's budget still counts what the member spent before the reset.
    assert (await s.limits_show(GUILD)).budget.spent_month == 10
    assert await h.audit_count() == 2


async def test_block_and_unblock_reach_the_policy(h: Harness) -> None:
    s = h.service
    change = await s.user_block(GUILD, MOD, ALICE, "  too   many\nreports ")
    assert change.blocked is not None and change.blocked.reason == "too many reports"
    with pytest.raises(EditRefused, match="too many reports"):
        s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)
    await s.user_block(GUILD, MOD, ALICE)  # re-blocking only changes the reason
    assert (await snapshot(h, ALICE, [])).blocked is not None
    with pytest.raises(AdminRefused, match="keep it under 301"):
        await s.user_block(GUILD, MOD, ALICE, "x" * 301)
    unblocked = await s.user_unblock(GUILD, MOD, ALICE)
    assert unblocked.blocked is None and unblocked.audit.action == "user.unblock"
    s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)
    with pytest.raises(AdminRefused, match=f"<@{ALICE}> is not blocked"):
        await s.user_unblock(GUILD, MOD, ALICE)
    assert await h.audit_count() == 3


async def test_pause_and_resume_the_guild(h: Harness) -> None:
    s = h.service
    with pytest.raises(AdminRefused, match="not paused"):
        await s.resume(GUILD, MOD)
    paused = await s.pause(GUILD, MOD, "maintenance until 18:00")
    assert paused.settings.paused and "maintenance" in paused.message
    with pytest.raises(EditRefused, match="paused on this server: maintenance until 18:00"):
        s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)
    resumed = await s.resume(GUILD, MOD)
    assert not resumed.settings.paused and resumed.settings.pause_reason is None
    s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)
    assert [e.action for e in (await s.audit(GUILD)).entries] == ["resume", "pause"]


async def test_channel_lists(h: Harness) -> None:
    s = h.service
    assert (await s.channels_list(GUILD)).everywhere
    await s.channels_deny(GUILD, MOD, 61)
    with pytest.raises(EditRefused, match="not allowed in this channel"):
        s.policy.check_access(await snapshot(h, ALICE, []), 61)
    s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)  # empty allow-list
    change = await s.channels_allow(GUILD, MOD, 62)
    assert (change.channels.allowed, change.channels.denied) == ([62], [61])
    assert not change.channels.everywhere
    with pytest.raises(EditRefused, match="Try <#62>"):
        s.policy.check_access(await snapshot(h, ALICE, []), CHANNEL)
    with pytest.raises(AdminRefused, match="<#62> is already allowed"):
        await s.channels_allow(GUILD, MOD, 62)
    with pytest.raises(AdminRefused, match="<#61> is already denied"):
        await s.channels_deny(GUILD, MOD, 61)
    switched = await s.channels_allow(GUILD, MOD, 61)  # a denied channel can be allowed
    assert switched.channels.allowed == [61, 62] and switched.channels.denied == []
    removed = await s.channels_remove(GUILD, MOD, 62)
    assert removed.channels.allowed == [61] and removed.audit.action == "channels.remove"
    with pytest.raises(AdminRefused, match="on neither list"):
        await s.channels_remove(GUILD, MOD, 62)
    with pytest.raises(AdminRefused, match="not a valid Discord id"):
        await s.channels_allow(GUILD, MOD, 0)
    actions = [e.action for e in (await s.audit(GUILD)).entries]
    assert actions == ["channels.remove", "channels.allow", "channels.allow", "channels.deny"]


async def test_audit_page_is_bounded_newest_first_and_per_guild(h: Harness) -> None:
    s = h.service
    for seconds in (10, 20, 30):
        await s.limits_set(GUILD, MOD, daily_seconds=seconds)
    await s.pause(200, MOD)
    page = await s.audit(GUILD, 2)
    assert len(page.entries) == 2 and page.entries[0].id > page.entries[1].id
    assert all(e.guild_id == GUILD for e in (await s.audit(GUILD, 100)).entries)
    for bad in (0, 101):
        with pytest.raises(AdminRefused, match="limit must be between 1 and 100"):
            await s.audit(GUILD, bad)


async def test_changes_are_mirrored_to_the_log_channel_best_effort(h: Harness) -> None:
    s = h.service
    await s.pause(GUILD, MOD)
    assert h.mirror.seen == []  # no log channel yet
    change = await s.log_channel_set(GUILD, MOD, 77)
    assert h.mirror.seen == [(change.audit.id, 77)]
    h.mirror.broken = True
    resumed = await s.resume(GUILD, MOD)  # the change stands even if Discord is down
    assert not resumed.settings.paused
    assert not (await h.service.limits_show(GUILD)).settings.paused
    h.mirror.broken = False
    stopped = await s.log_channel_set(GUILD, MOD, None)
    assert h.mirror.seen[-1] == (stopped.audit.id, 77)  # the old channel learns it stopped
    await s.pause(GUILD, MOD)
    assert len(h.mirror.seen) == 2

