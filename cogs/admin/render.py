"""Text for moderators: what each /kling-admin view looks like in Discord."""

from __future__ import annotations

from bot.admin.models import AuditPage, ChannelsView, JobList, LimitsView, UsageReport, UserReport
from bot.jobs.balance import BalanceChange
from bot.jobs.policy import Limit
from bot.jobs.provider_figures import credits_differ
from cogs.render import attempts_text
from storage.models import AuditEntry, Job

MAX_CHARS = 1900  # Discord's 2000 minus room for a footer


def _limit(name: str, limit: Limit, unit: str = " s") -> str:
    return f"{name}: **{limit.value}{unit}** ({limit.source})"


def _seconds(value: int | None) -> str:
    return "—" if value is None else f"{value} s"


def clip(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def limits_text(view: LimitsView) -> str:
    e, c = view.effective, view.ceilings
    lines = [
        "**Server limits in force** (members without a role tier or personal limit)",
        _limit("Daily", e.daily) + f" · ceiling {c.daily_seconds} s",
        _limit("Monthly", e.monthly) + f" · ceiling {c.monthly_seconds} s",
        _limit("Running at once", e.max_concurrent, "") + f" · ceiling {c.max_concurrent}",
        _limit("Cooldown", e.cooldown_s),
        f"Monthly budget: **{view.budget.budget.value} s**, {view.budget.spent_month} s spent, "
        f"{view.budget.remaining} s left, resets <t:{int(view.budget.resets_at)}:R>",
    ]
    balance = view.provider_balance
    if balance is not None:
        left = (
            "no cap" if balance.remaining is None
            else f"{balance.remaining:,.0f} credits, about {balance.edits_left} edit(s) at the "
            "longest clip"
        )
        lines.append(f"Provider account: {left} · checked <t:{int(balance.checked_at)}:R>")
        if balance.trend:
            lines.append(_balance_trend(balance.trend))
    if view.settings.paused:
        lines.append(f"⏸️ Paused: {view.settings.pause_reason or 'no reason given'}")
    for tier in view.role_tiers:
        lines.append(
            f"Role <@&{tier.subject_id}>: daily {_seconds(tier.daily_seconds)}, "
            f"monthly {_seconds(tier.monthly_seconds)}"
        )
    return clip("\n".join(lines))


def user_text(report: UserReport) -> str:
    lines = [f"**<@{report.user_id}>**"]
    for label, window in (("Today", report.today), ("This month", report.month)):
        lines.append(
            f"{label}: {window.used} s used, {window.granted} s granted, {window.left} s left "
            f"of {window.limit.value} s ({window.limit.source})"
            f" · resets <t:{int(window.resets_at)}:R>"
        )
    lines.append(f"Running: {report.active_jobs} of {report.limits.max_concurrent.value}")
    attempts = attempts_text(report.attempts)
    if attempts is not None:
        lines.append(f"Refused attempts: {attempts}")
    if report.cooldown_until:
        lines.append(f"Cooldown until <t:{int(report.cooldown_until)}:T>")
    if report.blocked:
        lines.append(
            f"🚫 Blocked by <@{report.blocked.blocked_by}>: {report.blocked.reason or '—'}"
        )
    for job in report.recent_jobs:
        lines.append(f"#{job.id} · {job.state.value} · <t:{int(job.created_at)}:R>")
    return clip("\n".join(lines))


def channels_text(view: ChannelsView) -> str:
    allowed = ", ".join(f"<#{c}>" for c in view.allowed) or "every channel"
    denied = ", ".join(f"<#{c}>" for c in view.denied) or "none"
    return f"Allowed: {allowed}\nDenied: {denied}"


def _credits(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _billing(job: Job) -> str:
    """Our seconds and credits, then the provider's credits (⚠️ when they differ)."""
    flag = " ⚠️" if credits_differ(job.credits, job.provider_credits) else ""
    return (
        f"{job.billed_seconds or 0} s · {_credits(job.credits)} cr "
        f"(provider {_credits(job.provider_credits)}){flag}"
    )


def _job_line(job: Job) -> str:
    line = f"#{job.id} · {job.state.value} · <@{job.user_id}> · {_billing(job)}"
    if job.error_code:
        line += f" · {job.error_code}"
        if job.provider_task_id:  # what a moderator looks up on the provider's dashboard
            line += f" · task `{job.provider_task_id}`"
    return line + f" · <t:{int(job.created_at)}:R>"


def jobs_text(listing: JobList) -> str:
    if not listing.jobs:
        return "No jobs match."
    return clip("\n".join(_job_line(job) for job in listing.jobs))


def usage_text(report: UsageReport) -> str:
    lines = [
        f"**Usage this {report.period.value}**: {report.job_count} jobs, "
        f"{report.total_billed_seconds} s billed, {report.total_credits:.0f} credits"
    ]
    for rank, row in enumerate(report.rows[:15], start=1):
        lines.append(
            f"{rank}. <@{row.user_id}> · {row.billed_seconds} s · {row.credits:.0f} credits · "
            f"{row.billed_jobs}/{row.jobs} jobs billed"
            + (f" · {row.pending_seconds} s pending" if row.pending_seconds else "")
        )
    return clip("\n".join(lines))


def _audit_line(e: AuditEntry) -> str:
    return clip(
        f"<t:{int(e.at)}:f> · <@{e.actor_id}> · `{e.action}`"
        + (f" · {e.target}" if e.target else "")
        + (f" · {e.detail}" if e.detail else "")
    )


def audit_text(page: AuditPage) -> tuple[str, bool]:
    """Whole entries, newest first, as many as fit; False when some were left out (the
    caller attaches them all as a file: a clipped listing would hide the oldest ones)."""
    if not page.entries:
        return "No admin actions yet.", True
    lines: list[str] = []
    for entry in page.entries:
        line = _audit_line(entry)
        if sum(len(shown) + 1 for shown in lines) + len(line) > MAX_CHARS - 80:
            break
        lines.append(line)
    left_out = len(page.entries) - len(lines)
    if left_out:
        lines.append(f"-# {left_out} older entries did not fit: all {len(page.entries)} "
                     "are in the attached file.")
    return "\n".join(lines), not left_out


def _balance_trend(trend: list[BalanceChange]) -> str:
    """E.g. "Balance trend: -340 credits over the last day, -2,100 over the last 7 days"."""
    parts = []
    for change in trend:
        period = "the last day" if change.days == 1 else f"the last {change.days} days"
        parts.append(f"{change.change:+,.0f} credits over {period}" if change.change is not None
                     else f"not known yet for {period}")
    return "Balance trend: " + ", ".join(parts)
