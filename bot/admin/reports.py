"""Pure helpers for reports: period windows and the CSV export of jobs."""

from __future__ import annotations

import csv
import io
from collections.abc import Set
from datetime import UTC, datetime

from bot.admin.models import Period
from bot.jobs.policy import Windows
from storage.models import AuditEntry, Job

# Ours and the provider's side by side: the clip's measured length and the length the
# provider reports, the seconds we billed, our credits and the provider's.
CSV_HEADER = (
    "id",
    "created_at",
    "user_id",
    "state",
    "duration_s",
    "provider_video_duration",
    "billed_seconds",
    "credits",
    "provider_credits",
    "provider_task_id",
    "error_code",
    # The billed seconds the server spent on the job: settled and never given back (else 0),
    # the leaderboard's rule; the usage chart plots exactly these.
    "spent_seconds",
)
AUDIT_CSV_HEADER = ("at", "actor_id", "action", "target", "detail")
_DAY = 86_400.0


def period_window(period: Period, now: float) -> tuple[float, float]:
    """[since, until) of the UTC calendar period containing `now`, like the quota windows.

    Weeks start on Monday (ISO 8601), so `week` never straddles two quota days oddly.
    """
    windows = Windows.at(now)
    if period is Period.DAY:
        return windows.day_start, windows.day_end
    if period is Period.WEEK:
        weekday = datetime.fromtimestamp(now, UTC).weekday()
        start = windows.day_start - weekday * _DAY
        return start, start + 7 * _DAY
    return windows.month_start, windows.month_end


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _cell(value: object) -> object:
    return "" if value is None else value


def spent_seconds(job: Job, spent_ids: Set[int]) -> int:
    """What a job cost the server in billed seconds: its billed seconds if it is among the
    spent jobs (storage: settled, never refunded or released), else 0."""
    return (job.billed_seconds or 0) if job.id in spent_ids else 0


def jobs_csv(jobs: list[Job], spent_ids: Set[int]) -> str:
    """RFC 4180 text (csv module quoting), one row per job, values straight from the row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for job in jobs:
        writer.writerow(
            [
                job.id,
                iso_utc(job.created_at),
                job.user_id,
                job.state.value,
                _cell(job.duration_s),
                _cell(job.provider_video_duration),
                _cell(job.billed_seconds),
                _cell(job.credits),
                _cell(job.provider_credits),
                _cell(job.provider_task_id),
                _cell(job.error_code),
                spent_seconds(job, spent_ids),
            ]
        )
    return buffer.getvalue()


def audit_csv(entries: list[AuditEntry]) -> str:
    """The audit entries as RFC 4180 text, in the order given, for a listing too long to show."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_CSV_HEADER)
    for entry in entries:
        writer.writerow(
            [iso_utc(entry.at), entry.actor_id, entry.action, _cell(entry.target),
             _cell(entry.detail)]
        )
    return buffer.getvalue()


def report_filename(guild_id: int, period: Period, since: float, extension: str) -> str:
    day = datetime.fromtimestamp(since, UTC).date().isoformat()
    return f"kling-usage-{guild_id}-{period.value}-{day}.{extension}"
