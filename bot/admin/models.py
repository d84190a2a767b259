"""What the admin service returns: plain data the /kling-admin front end renders."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from bot.i18n import Text, english
from bot.jobs.balance import BalanceFigures
from bot.jobs.policy import Attempts, EffectiveLimits, Limit, UsageWindow
from storage.models import (
    AuditEntry,
    BlockedUser,
    GuildSettings,
    Job,
    LimitOverride,
    MediaObject,
    UsageRow,
)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Ceilings(BaseModel):
    """The highest values a moderator may set (operator settings and sanity caps)."""

    daily_seconds: int
    monthly_seconds: int
    max_concurrent: int
    cooldown_seconds: int
    monthly_budget: int
    grant_seconds: int


class Change(BaseModel):
    """Every successful mutation: one sentence for the moderator (`text`, shown in their
    language; `message` is its English) and the audit row written."""

    text: Text
    audit: AuditEntry

    @property
    def message(self) -> str:
        return english(self.text)


class BudgetView(BaseModel):
    budget: Limit
    spent_month: int
    remaining: int
    resets_at: float


class LimitsView(BaseModel):
    """`limits show`: the server's stored settings, what is in force, and the ceilings."""

    settings: GuildSettings
    effective: EffectiveLimits  # with no user or role override
    ceilings: Ceilings
    budget: BudgetView
    role_tiers: list[LimitOverride]
    provider_balance: BalanceFigures | None = None  # None: not read yet


class LimitsChanged(Change):
    limits: LimitsView


class BudgetChanged(Change):
    budget: BudgetView


class GuildChanged(Change):
    settings: GuildSettings


class OverrideChanged(Change):
    override: LimitOverride | None  # None once cleared


class BlockChanged(Change):
    blocked: BlockedUser | None


class UserReport(BaseModel):
    guild_id: int
    user_id: int
    today: UsageWindow
    month: UsageWindow
    limits: EffectiveLimits  # each with where it comes from
    user_override: LimitOverride | None
    role_overrides: list[LimitOverride]  # only the member's roles that have a tier
    active_jobs: int
    cooldown_until: float | None  # None when the member may submit now
    attempts: Attempts  # refused attempts in the window, against the attempt limit
    blocked: BlockedUser | None
    recent_jobs: list[Job]


class ChannelsView(BaseModel):
    allowed: list[int]
    denied: list[int]

    @property
    def everywhere(self) -> bool:
        """An empty allow-list means every channel not explicitly denied."""
        return not self.allowed


class ChannelsChanged(Change):
    channels: ChannelsView


class JobList(BaseModel):
    jobs: list[Job]
    state: str | None
    user_id: int | None


class Redelivery(Change):
    """What the front end re-posts; the service only checked and audited it."""

    job: Job
    media: MediaObject


class TaskAttached(Change):
    job: Job  # SUBMITTED with the task, announced and due for a poll


class Refetch(Change):
    """A job handed back to the tracker to ask the provider for its result again."""

    job: Job


class JobFailed(Change):
    job: Job
    refunded_seconds: int


class UsageReport(BaseModel):
    guild_id: int
    period: Period
    since: float
    until: float
    rows: list[UsageRow]  # leaderboard, biggest spender first
    job_count: int
    total_billed_seconds: int
    total_credits: float
    csv_filename: str
    csv_text: str  # every job created in the period, one row each
    chart_filename: str
    chart_png: bytes  # spent seconds per day from the CSV's rows (bot/admin/usage_chart.py)


class AuditPage(BaseModel):
    entries: list[AuditEntry]  # newest first
