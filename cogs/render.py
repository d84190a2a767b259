"""Text members see: status messages, progress bars, refusals. Pure functions of job data."""

from __future__ import annotations

import discord

from bot.jobs.errors import EditRefused
from bot.jobs.notifier import ModeratorAlert
from storage.models import Job, JobState

BAR_CELLS = 12
PROMPT_PREVIEW = 300

_STATE_LABELS = {
    JobState.RECEIVED: "Checking your files",
    JobState.FETCHING: "Checking your files",
    JobState.RESERVED: "Preparing",
    JobState.REHOSTED: "Preparing",
    JobState.SUBMITTING: "Sending to Kling",
    JobState.SUBMITTED: "Editing",
    JobState.DOWNLOADING: "Fetching the result",
    JobState.ARCHIVED: "Posting the result",
    JobState.DELIVERED: "Done",
    JobState.FAILED: "Failed",
    JobState.REJECTED: "Refused",
    JobState.SUBMISSION_UNKNOWN: "Waiting for a moderator",
}


def state_label(job: Job) -> str:
    if job.state is JobState.SUBMITTED and job.provider_status == "pending":
        return "Queued at Kling"
    return _STATE_LABELS[job.state]


def progress_bar(percent: int) -> str:
    percent = max(0, min(100, percent))
    filled = round(percent / 100 * BAR_CELLS)
    return "█" * filled + "░" * (BAR_CELLS - filled) + f" {percent}%"


def duration_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def safe_prompt(prompt: str) -> str:
    """Shown as text: mentions and markdown are neutralised, long prompts shortened."""
    text = prompt if len(prompt) <= PROMPT_PREVIEW else prompt[: PROMPT_PREVIEW - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def status_text(job: Job, now: float) -> str:
    lines = [
        f"🎬 **Kling edit #{job.id}** for <@{job.user_id}>",
        f"> {safe_prompt(job.prompt)}".replace("\n", "\n> "),
        f"**{state_label(job)}**",
    ]
    if job.state is JobState.SUBMITTED:
        lines.append(progress_bar(job.progress))
        started = job.submitted_at or job.created_at
        elapsed = now - started
        timing = f"Elapsed {duration_text(elapsed)}"
        if job.estimated_time_s:
            remaining = job.estimated_time_s - elapsed
            timing += f" · ETA ~{duration_text(remaining)}" if remaining > 0 else " · any moment"
        lines.append(timing)
        if job.error_message:  # a moderator is checking it (the provider cannot find it)
            lines.append(job.error_message)
    elif job.state is JobState.DELIVERED:
        lines.append(progress_bar(100))
    elif job.error_message and job.state in (
        JobState.FAILED, JobState.REJECTED, JobState.SUBMISSION_UNKNOWN,
    ):
        lines.append(job.error_message)
    charge = charge_text(job)
    if charge:
        lines.append(f"-# {charge}")
    return "\n".join(lines)


def charge_text(job: Job) -> str | None:
    """What the edit costs its requester. A failure before the provider finished was
    refunded (or released), so it must not read as billed."""
    if not job.billed_seconds:
        return None
    if (job.state is JobState.FAILED and job.completed_at is None
            and job.error_code != ModeratorAlert.TASK_LOST):
        return f"Nothing was charged: the {job.billed_seconds} s went back to the quota."
    if job.state is JobState.SUBMISSION_UNKNOWN:
        return f"{job.billed_seconds} s stay reserved until a moderator checks."
    return f"Billed as {job.billed_seconds} s"


def refusal_text(refusal: EditRefused) -> str:
    text = f"❌ {refusal.reason}"
    if refusal.retry_at is not None:
        text += f" You can try again <t:{int(refusal.retry_at)}:R>."
    return text


def thread_name(job: Job) -> str:
    words = " ".join(job.prompt.split())[:60]
    return f"Kling #{job.id} · {words}" if words else f"Kling #{job.id}"
