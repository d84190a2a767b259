"""A member's prompt reaches the public status message and thread name only as plain text."""

from __future__ import annotations

import pytest

from bot.i18n import Catalogs
from cogs.render import safe_prompt, status_text, thread_name
from storage.models import Job, JobSource, JobState
from tests.discord_markup import HIDDEN, HOSTILE_PROMPT, rendered_markup

ENGLISH = Catalogs().speaker("en-US")


def job_with(prompt: str) -> Job:
    return Job(
        id=42, guild_id=1, channel_id=2, user_id=123456789012345678, state=JobState.SUBMITTED,
        model="kling-o1-video-edit", prompt=prompt, keep_audio=False,
        source=JobSource(video_url="https://cdn.example/clip.mp4"), parent_job_id=None,
        duration_s=4.0, billed_seconds=4, credits=None, provider_task_id="t",
        provider_status="processing", progress=10, estimated_time_s=None,
        callback_secret="c", result_url=None, status_message_id=None, thread_id=None,
        delivered_message_id=None, error_code=None, error_message=None, created_at=0.0,
        updated_at=0.0, submitted_at=0.0, completed_at=None, delivered_at=None, ended_at=None,
        next_poll_at=None, poll_count=0, download_attempts=0, delivery_attempts=0,
        next_delivery_at=None, poll_errors=0, not_found_since=None,
    )


def visible(text: str) -> str:
    return text.replace("\u200b", "").replace("\\", "")


@pytest.mark.parametrize(
    "prompt",
    [
        HOSTILE_PROMPT,
        "<#123456789012345678>",
        "</edit:123456789012345678>",
        "<@&123456789012345678> <@123456789012345678>",
        "discord.gg/abc",
        "see https://discord.com/invite/abc",
        "HTTP://EVIL.EXAMPLE",
        "<https://evil.example>",
        "[x](https://evil.example)",
        "\u202eright to left",
        "bell\x07 escape\x1b nul\x00 c1\x9b",
    ],
)
def test_a_hostile_prompt_renders_as_plain_text(prompt: str) -> None:
    text = status_text(job_with(prompt), 5.0, ENGLISH)
    quoted = text.split("\n")[1]
    assert rendered_markup(quoted) == []
    assert HIDDEN.search(text) is None


def test_the_prompt_still_reads_the_same() -> None:
    shown = visible(safe_prompt(HOSTILE_PROMPT))
    for words in ("snow evil iso markbell", "<#123456789012345678>", "</edit:123456789012345678>",
                  "discord.gg/abc", "https://discord.com/invite/xyz"):
        assert words in shown


def test_newlines_stay_lines_of_the_quote() -> None:
    text = status_text(
        job_with("first line\n<#123456789012345678>\r\nthird\u2028fourth"), 5.0, ENGLISH
    )
    assert text.split("\n")[1:5] == [
        "> first line", "> <\u200b#123456789012345678>", "> third", "> fourth"
    ]


def test_a_thread_name_has_no_bidi_or_control_characters() -> None:
    name = thread_name(job_with("\u202e\u2066snow\u2069\x07 \tfalling\x85"))
    assert name == "Kling #42 · snow falling"


def test_an_ordinary_prompt_is_unchanged() -> None:
    assert safe_prompt("make it snow, 50% brighter (2 < 3)") == (
        "make it snow, 50% brighter (2 < 3)"
    )
