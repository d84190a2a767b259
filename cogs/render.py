"""Text members see: status messages, progress bars, refusals. Pure functions of job data."""

from __future__ import annotations

import re

import discord

from bot.jobs.errors import EditRefused
from bot.jobs.messages import counted_seconds, window_text
from bot.jobs.notifier import ModeratorAlert
from bot.jobs.policy import Attempts
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


ZWSP = "\u200b"  # zero-width space: breaks a markup token without showing anything
# Bidi embeddings, overrides, isolates and marks (they reorder the text around them), then
# C0 and C1 controls and DEL; newline is kept (it makes the quote's lines).
_INVISIBLE = re.compile(
    "[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x09\x0b-\x1f\x7f-\x9f]"
)
# Every markup Discord renders between angle brackets starts with "<" and a sigil: user,
# role and channel mentions, slash-command mentions, custom emoji, timestamps, guild
# navigation and suppressed-embed links (discord.com/developers/docs/reference
# #message-formatting-formats). A zero-width space after the "<" leaves each one as text.
# A tab reads as a space; Unicode's line and paragraph separators as the newline they are.
_WHITESPACE = str.maketrans({"\t": " ", "\u2028": "\n", "\u2029": "\n"})
_ANGLE_MARKUP = re.compile(r"<(?=[@#/:a-z])", re.IGNORECASE)
# A link is rendered only with its scheme's "://"; Discord also turns its invite hosts
# into invites without any scheme.
_LINK_SCHEME = re.compile(r"(?<=[a-z0-9+.-]:)(?=//)", re.IGNORECASE)
_INVITE_HOST = re.compile(r"(?<=\bdiscord)(?=\.gg\b)|(?<=\bdiscord)(?=\.com/invite)|"
                          r"(?<=\bdiscordapp)(?=\.com/invite)", re.IGNORECASE)


def plain_text(text: str) -> str:
    """Member text without the characters that reorder or hide what is around them."""
    return _INVISIBLE.sub("", text.translate(_WHITESPACE))


def safe_prompt(prompt: str) -> str:
    """Shown as text: no bidi or control characters; mentions, links and markdown are
    neutralised; long prompts shortened."""
    text = plain_text(prompt)
    text = text if len(text) <= PROMPT_PREVIEW else text[: PROMPT_PREVIEW - 1] + "…"
    # Links first: once broken, escape_markdown no longer leaves them alone.
    text = _INVITE_HOST.sub(ZWSP, _LINK_SCHEME.sub(ZWSP, text))
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return _ANGLE_MARKUP.sub("<" + ZWSP, text)


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
        return f"Nothing was charged: the {counted_seconds(job)} s went back to the quota."
    if job.state is JobState.SUBMISSION_UNKNOWN:
        return f"{counted_seconds(job)} s stay reserved until a moderator checks."
    return f"Billed as {job.billed_seconds} s"


def attempts_text(attempts: Attempts) -> str | None:
    """Refused attempts against the attempt limit, as /quota and the moderators' user report
    show them; None when the operator turned the limit off."""
    if not attempts.limit:
        return None
    text = f"{attempts.refused} of {attempts.limit} in the last {window_text(attempts.window_s)}"
    if attempts.wait_until is not None:
        text += f" · new edits wait until <t:{int(attempts.wait_until)}:T>"
    return text


def refusal_text(refusal: EditRefused) -> str:
    text = f"❌ {refusal.reason}"
    if refusal.retry_at is not None:
        text += f" You can try again <t:{int(refusal.retry_at)}:R>."
    return text


def thread_name(job: Job) -> str:
    words = " ".join(plain_text(job.prompt).split())[:60]
    return f"Kling #{job.id} · {words}" if words else f"Kling #{job.id}"
