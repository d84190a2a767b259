"""Checks on moderator input, each failing with a message that names the field and range."""

from __future__ import annotations

from bot.admin.errors import AdminRefused
from bot.admin.models import Ceilings, Period
from bot.i18n import N_, Text
from bot.jobs.policy import QuotaDefaults
from storage.models import JobState

# Caps the operator does not configure: beyond them a value can only be a typo.
MAX_COOLDOWN_SECONDS = 86_400
MAX_MONTHLY_BUDGET = 10_000_000
MAX_REASON_CHARS = 300
MAX_JOBS_LISTED = 50
MAX_AUDIT_ENTRIES = 100

_CEILING_NOTE = N_("the operator's ceiling")


def ceilings_from(defaults: QuotaDefaults) -> Ceilings:
    return Ceilings(
        daily_seconds=defaults.ceiling_daily_seconds,
        monthly_seconds=defaults.ceiling_monthly_seconds,
        max_concurrent=defaults.ceiling_max_concurrent,
        cooldown_seconds=MAX_COOLDOWN_SECONDS,
        monthly_budget=MAX_MONTHLY_BUDGET,
        # A grant adds to today's window too, so one grant may not exceed the daily ceiling.
        grant_seconds=defaults.ceiling_daily_seconds,
    )


def in_range(
    name: str, value: int | None, high: int, *, low: int = 0, note: Text | None = None
) -> None:
    """Refuse anything but an int in [low, high]; None means "not given" and passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AdminRefused(N_(
            "{name} must be between {low} and {high} ({note}), not {value}.", name=name,
            low=low, high=high, note=note, value=repr(value),
        ) if note else N_(
            "{name} must be between {low} and {high}, not {value}.", name=name, low=low,
            high=high, value=repr(value),
        ))


def check_quota_values(
    ceilings: Ceilings, *, daily_seconds: int | None = None, monthly_seconds: int | None = None
) -> None:
    in_range("daily_seconds", daily_seconds, ceilings.daily_seconds, note=_CEILING_NOTE)
    in_range("monthly_seconds", monthly_seconds, ceilings.monthly_seconds, note=_CEILING_NOTE)


def check_guild_values(
    ceilings: Ceilings,
    *,
    daily_seconds: int | None,
    monthly_seconds: int | None,
    max_concurrent: int | None,
    cooldown_seconds: int | None,
) -> None:
    check_quota_values(ceilings, daily_seconds=daily_seconds, monthly_seconds=monthly_seconds)
    in_range("max_concurrent", max_concurrent, ceilings.max_concurrent, note=_CEILING_NOTE)
    in_range("cooldown_seconds", cooldown_seconds, ceilings.cooldown_seconds)


def check_id(name: str, value: int) -> None:
    """Discord ids are positive 64-bit snowflakes; anything else is a front-end bug."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise AdminRefused(N_("{name} is not a valid Discord id.", name=name))


def clean_reason(reason: str | None, *, required: bool = False) -> str | None:
    text = " ".join(reason.split()) if reason else ""
    if not text:
        if required:
            raise AdminRefused(N_("A reason is required."))
        return None
    if len(text) > MAX_REASON_CHARS:
        raise AdminRefused(N_(
            "The reason is {length} characters long; keep it under {limit}.", length=len(text),
            limit=MAX_REASON_CHARS + 1,
        ))
    return text


def parse_state(state: str | None) -> JobState | None:
    if state is None or not state.strip():
        return None
    try:
        return JobState(state.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise AdminRefused(N_(
            "Unknown job state {state}; use one of: {names}.", state=repr(state), names=names
        )) from None


def parse_period(period: str | None) -> Period:
    if period is None:
        return Period.MONTH
    try:
        return Period(period.strip().lower())
    except ValueError:
        raise AdminRefused(N_(
            "Unknown period {period}; use day, week or month.", period=repr(period)
        )) from None
