"""Text members see: status messages, progress bars, refusals. Pure functions of job data."""

from __future__ import annotations

import re

import discord

from bot.i18n import N_, Span, Speaker, Text
from bot.jobs.errors import EditRefused
from bot.jobs.messages import counted_seconds
from bot.jobs.notifier import ModeratorAlert
from bot.jobs.policy import Attempts
from storage.models import Job, JobState

BAR_CELLS = 12
PROMPT_PREVIEW = 300

_STATE_LABELS = {
    JobState.RECEIVED: N_("Checking your files"),
    JobState.FETCHING: N_("Checking your files"),
    JobState.RESERVED: N_("Preparing"),
    JobState.REHOSTED: N_("Preparing"),
    JobState.SUBMITTING: N_("Sending to Kling"),
    JobState.SUBMITTED: N_("Editing"),
    JobState.DOWNLOADING: N_("Fetching the result"),
    JobState.ARCHIVED: N_("Posting the result"),
    JobState.DELIVERED: N_("Done"),
    JobState.FAILED: N_("Failed"),
    JobState.REJECTED: N_("Refused"),
    JobState.SUBMISSION_UNKNOWN: N_("Waiting for a moderator"),
}


def state_label(job: Job) -> Text:
    if job.state is JobState.SUBMITTED and job.provider_status == "pending":
        return N_("Queued at Kling")
    return _STATE_LABELS[job.state]


def progress_bar(percent: int) -> str:
    percent = max(0, min(100, percent))
    filled = round(percent / 100 * BAR_CELLS)
    return "█" * filled + "░" * (BAR_CELLS - filled) + f" {percent}%"


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


def status_text(job: Job, now: float, say: Speaker) -> str:
    """The job's public status message, in the server's language (`say`)."""
    lines = [
        say(N_("🎬 **Kling edit #{job}** for {member}", job=job.id, member=f"<@{job.user_id}>")),
        f"> {safe_prompt(job.prompt)}".replace("\n", "\n> "),
        f"**{say(state_label(job))}**",
    ]
    if job.state is JobState.SUBMITTED:
        lines.append(progress_bar(job.progress))
        started = job.submitted_at or job.created_at
        elapsed = Span(seconds=max(0, int(now - started)), rough=True)
        remaining = (job.estimated_time_s or 0) - (now - started)
        if not job.estimated_time_s:
            timing = N_("Elapsed {elapsed}", elapsed=elapsed)
        elif remaining > 0:
            timing = N_("Elapsed {elapsed} · ETA ~{remaining}", elapsed=elapsed,
                        remaining=Span(seconds=int(remaining), rough=True))
        else:
            timing = N_("Elapsed {elapsed} · any moment", elapsed=elapsed)
        lines.append(say(timing))
        if job.error_message:  # a moderator is checking it (the provider cannot find it)
            lines.append(say(Text.from_stored(job.error_message)))
    elif job.state is JobState.DELIVERED:
        lines.append(progress_bar(100))
    elif job.error_message and job.state in (
        JobState.FAILED, JobState.REJECTED, JobState.SUBMISSION_UNKNOWN,
    ):
        lines.append(say(Text.from_stored(job.error_message)))
    charge = charge_text(job)
    if charge:
        lines.append(f"-# {say(charge)}")
    return "\n".join(lines)


def charge_text(job: Job) -> Text | None:
    """What the edit costs its requester. A failure before the provider finished was
    refunded (or released), so it must not read as billed."""
    if not job.billed_seconds:
        return None
    if (job.state is JobState.FAILED and job.completed_at is None
            and job.error_code != ModeratorAlert.TASK_LOST):
        return N_("Nothing was charged: the {seconds} s went back to the quota.",
                  seconds=counted_seconds(job))
    if job.state is JobState.SUBMISSION_UNKNOWN:
        return N_("{seconds} s stay reserved until a moderator checks.",
                  seconds=counted_seconds(job))
    return N_("Billed as {seconds} s", seconds=job.billed_seconds)


def attempts_text(attempts: Attempts) -> Text | None:
    """Refused attempts against the attempt limit, as /quota and the moderators' user report
    show them; None when the operator turned the limit off."""
    if not attempts.limit:
        return None
    window = Span(seconds=attempts.window_s)
    if attempts.wait_until is None:
        return N_("{refused} of {limit} in the last {window}", refused=attempts.refused,
                  limit=attempts.limit, window=window)
    return N_(
        "{refused} of {limit} in the last {window} · new edits wait until {time}",
        refused=attempts.refused, limit=attempts.limit, window=window,
        time=f"<t:{int(attempts.wait_until)}:T>",
    )


def refusal_text(refusal: EditRefused, say: Speaker) -> str:
    if refusal.retry_at is None:
        return f"❌ {say(refusal.text)}"
    return "❌ " + say(N_("{reason} You can try again {time}.", reason=refusal.text,
                           time=f"<t:{int(refusal.retry_at)}:R>"))


def thread_name(job: Job) -> str:
    words = " ".join(plain_text(job.prompt).split())[:60]
    return f"Kling #{job.id} · {words}" if words else f"Kling #{job.id}"
