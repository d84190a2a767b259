"""Text for moderators: what each /kling-admin view looks like in Discord, in the
moderator's language (`say`)."""

from __future__ import annotations

from bot.admin.models import AuditPage, ChannelsView, JobList, LimitsView, UsageReport, UserReport
from bot.i18n import N_, Number, Speaker, Text
from bot.jobs.balance import BalanceChange
from bot.jobs.policy import Limit
from bot.jobs.provider_figures import credits_differ
from cogs.render import attempts_text
from storage.models import AuditEntry, Job

MAX_CHARS = 1900  # Discord's 2000 minus room for a footer
# Where a limit comes from (bot/jobs/policy.py names them); "role <id>" is said apart.
_SOURCES = {
    "user override": N_("user override"),
    "server setting": N_("server setting"),
    "bot default": N_("bot default"),
}


def _source(limit: Limit) -> Text:
    if limit.source.startswith("role "):
        return N_("role {id}", id=limit.source.removeprefix("role "))
    return _SOURCES.get(limit.source, Text.verbatim(limit.source))


def _limit(name: Text, limit: Limit, say: Speaker, unit: str = " s") -> str:
    return say(N_("{name}: **{value}** ({source})", name=name, value=f"{limit.value}{unit}",
                  source=_source(limit)))


def _seconds(value: int | None) -> str:
    return "—" if value is None else f"{value} s"


def clip(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def limits_text(view: LimitsView, say: Speaker) -> str:
    e, c = view.effective, view.ceilings
    lines = [
        say(N_("**Server limits in force** (members without a role tier or personal limit)")),
        _limit(N_("Daily"), e.daily, say) + " · " + say(N_("ceiling {value} s",
                                                            value=c.daily_seconds)),
        _limit(N_("Monthly"), e.monthly, say) + " · " + say(N_("ceiling {value} s",
                                                                value=c.monthly_seconds)),
        _limit(N_("Running at once"), e.max_concurrent, say, "") + " · "
        + say(N_("ceiling {value}", value=c.max_concurrent)),
        _limit(N_("Cooldown"), e.cooldown_s, say),
        say(N_("Monthly budget: **{budget} s**, {spent} s spent, {left} s left, resets {time}",
               budget=view.budget.budget.value, spent=view.budget.spent_month,
               left=view.budget.remaining, time=f"<t:{int(view.budget.resets_at)}:R>")),
    ]
    balance = view.provider_balance
    if balance is not None:
        left = (
            N_("no cap") if balance.remaining is None
            else N_("{credits} credits, about {edits} edit(s) at the longest clip",
                    credits=Number(number=balance.remaining, digits=0),
                    edits=str(balance.edits_left))
        )
        lines.append(say(N_("Provider account: {left} · checked {time}", left=left,
                            time=f"<t:{int(balance.checked_at)}:R>")))
        if balance.trend:
            lines.append(say(_balance_trend(balance.trend)))
    if view.settings.paused:
        reason = view.settings.pause_reason
        lines.append("⏸️ " + say(N_("Paused: {reason}", reason=reason) if reason
                                  else N_("Paused: no reason given")))
    for tier in view.role_tiers:
        lines.append(say(N_(
            "Role {role}: daily {daily}, monthly {monthly}", role=f"<@&{tier.subject_id}>",
            daily=_seconds(tier.daily_seconds), monthly=_seconds(tier.monthly_seconds),
        )))
    return clip("\n".join(lines))


def user_text(report: UserReport, say: Speaker) -> str:
    lines = [f"**<@{report.user_id}>**"]
    for label, window in ((N_("Today"), report.today), (N_("This month"), report.month)):
        lines.append(say(N_(
            "{window}: {used} s used, {granted} s granted, {left} s left of {limit} s ({source})"
            " · resets {time}", window=label, used=window.used, granted=window.granted,
            left=window.left, limit=window.limit.value, source=_source(window.limit),
            time=f"<t:{int(window.resets_at)}:R>",
        )))
    lines.append(say(N_("Running: {running} of {limit}", running=report.active_jobs,
                        limit=report.limits.max_concurrent.value)))
    attempts = attempts_text(report.attempts)
    if attempts is not None:
        lines.append(say(N_("Refused attempts: {attempts}", attempts=attempts)))
    if report.cooldown_until:
        lines.append(say(N_("Cooldown until {time}",
                            time=f"<t:{int(report.cooldown_until)}:T>")))
    if report.blocked:
        lines.append("🚫 " + say(N_(
            "Blocked by {moderator}: {reason}", moderator=f"<@{report.blocked.blocked_by}>",
            reason=report.blocked.reason or "—",
        )))
    for job in report.recent_jobs:
        lines.append(f"#{job.id} · {job.state.value} · <t:{int(job.created_at)}:R>")
    return clip("\n".join(lines))


def channels_text(view: ChannelsView, say: Speaker) -> str:
    allowed = ", ".join(f"<#{c}>" for c in view.allowed) or say(N_("every channel"))
    denied = ", ".join(f"<#{c}>" for c in view.denied) or say(N_("none"))
    return say(N_("Allowed: {allowed}\nDenied: {denied}", allowed=allowed, denied=denied))


def _credits(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _billing(job: Job, say: Speaker) -> str:
    """Our seconds and credits, then the provider's credits (⚠️ when they differ)."""
    flag = " ⚠️" if credits_differ(job.credits, job.provider_credits) else ""
    return say(N_(
        "{seconds} s · {credits} cr (provider {provider})", seconds=job.billed_seconds or 0,
        credits=_credits(job.credits), provider=_credits(job.provider_credits),
    )) + flag


def _job_line(job: Job, say: Speaker) -> str:
    line = f"#{job.id} · {job.state.value} · <@{job.user_id}> · {_billing(job, say)}"
    if job.error_code:
        line += f" · {job.error_code}"
        if job.provider_task_id:  # what a moderator looks up on the provider's dashboard
            line += " · " + say(N_("task {task}", task=f"`{job.provider_task_id}`"))
    return line + f" · <t:{int(job.created_at)}:R>"


def jobs_text(listing: JobList, say: Speaker) -> str:
    if not listing.jobs:
        return say(N_("No jobs match."))
    return clip("\n".join(_job_line(job, say) for job in listing.jobs))


_PERIODS = {"day": N_("day"), "week": N_("week"), "month": N_("month")}


def usage_text(report: UsageReport, say: Speaker) -> str:
    lines = [say(N_(
        "**Usage this {period}**: {jobs} jobs, {seconds} s billed, {credits} credits",
        period=_PERIODS.get(report.period.value, Text.verbatim(report.period.value)),
        jobs=report.job_count, seconds=report.total_billed_seconds,
        credits=Number(number=report.total_credits, digits=0),
    ))]
    for rank, row in enumerate(report.rows[:15], start=1):
        line = N_(
            "{rank}. {member} · {seconds} s · {credits} credits · {billed}/{jobs} jobs billed",
            rank=rank, member=f"<@{row.user_id}>", seconds=row.billed_seconds,
            credits=Number(number=row.credits, digits=0), billed=row.billed_jobs, jobs=row.jobs,
        )
        pending = (" · " + say(N_("{seconds} s pending", seconds=row.pending_seconds))
                   if row.pending_seconds else "")
        lines.append(say(line) + pending)
    return clip("\n".join(lines))


def _audit_line(e: AuditEntry) -> str:
    return clip(
        f"<t:{int(e.at)}:f> · <@{e.actor_id}> · `{e.action}`"
        + (f" · {e.target}" if e.target else "")
        + (f" · {e.detail}" if e.detail else "")
    )


def audit_text(page: AuditPage, say: Speaker) -> tuple[str, bool]:
    """Whole entries, newest first, as many as fit; False when some were left out (the
    caller attaches them all as a file: a clipped listing would hide the oldest ones)."""
    if not page.entries:
        return say(N_("No admin actions yet.")), True
    lines: list[str] = []
    for entry in page.entries:
        line = _audit_line(entry)
        if sum(len(shown) + 1 for shown in lines) + len(line) > MAX_CHARS - 80:
            break
        lines.append(line)
    left_out = len(page.entries) - len(lines)
    if left_out:
        lines.append("-# " + say(N_(
            "{count} older entries did not fit: all {total} are in the attached file.",
            count=left_out, total=len(page.entries),
        )))
    return "\n".join(lines), not left_out


def _balance_trend(trend: list[BalanceChange]) -> Text:
    """E.g. "Balance trend: down 340 credits in the last day, up 1,660 credits in the last
    7 days" (a top-up shows as a rise)."""
    parts: list[Text] = []
    for change in trend:
        period = (N_("the last day") if change.days == 1
                  else N_("the last {days} days", days=change.days))
        if change.change is None:
            part = N_("not known yet for {period}", period=period)
        elif change.change < 0:
            part = N_("down {credits} credits in {period}", period=period,
                      credits=Number(number=-change.change, digits=0))
        else:
            part = N_("up {credits} credits in {period}", period=period,
                      credits=Number(number=change.change, digits=0))
        parts.append(part)
    listed = parts[0]
    for part in parts[1:]:
        listed = N_("{earlier}, {later}", earlier=listed, later=part)
    return N_("Balance trend: {changes}", changes=listed)
