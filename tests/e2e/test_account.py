"""/jobs and /quota as a member sees them, and what a member sees when a command breaks."""

from __future__ import annotations

import logging
import re
import time

import pytest

from bot.jobs.models import EditRequest
from bot.jobs.policy import Windows
from sandbox.evolink_sim import TaskScript
from storage.models import Job, JobState
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer

SLOW = TaskScript(processing_s=100_000.0)  # minutes of real time, ended by complete_now
SECRET_DETAIL = "database exploded at 0xdeadbeef"


async def command(stack: Stack, name: str, member: object = None) -> str:
    ix = await stack.emu.send_slash_command(
        stack.world.guild, stack.world.channel, member or stack.world.member, name
    )
    return (await ephemeral_answer(stack, ix)).content


async def started_job(stack: Stack, prompt: str) -> Job:
    """An /edit that the provider is still working on (slow script)."""
    stack.sim.script_next_task(SLOW)
    ix = await stack.edit({"prompt": prompt, "video": stack.clip(seconds=4.0)})
    assert "started" in (await ephemeral_answer(stack, ix)).content
    assert stack.bot is not None and stack.bot.services is not None
    job = (await stack.bot.services.jobs.search(stack.world.guild.id))[0]
    assert job.prompt == prompt and job.state is JobState.SUBMITTED
    return job


async def deliver(stack: Stack, job: Job) -> Job:
    assert stack.bot is not None and stack.bot.services is not None and job.thread_id
    stack.sim.complete_now(job.provider_task_id or "")
    await stack.emu.wait_for_message(job.thread_id, lambda m: bool(m.attachments))
    await stack.bot.services.tracker.idle()
    done = await stack.bot.services.jobs.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    return done


# --- /jobs ---------------------------------------------------------------------------------


async def test_jobs_lists_my_recent_edits_with_state_and_thread(stack: Stack) -> None:
    bob = stack.emu.create_member(stack.world.guild.id, "bob")
    await stack.start_bot()
    assert "no edits yet" in await command(stack, "jobs")

    first = await deliver(stack, await started_job(stack, "make it snow"))
    running = await started_job(stack, "make it rain")
    lines = (await command(stack, "jobs")).splitlines()

    assert len(lines) == 2  # newest first, one line per edit
    assert lines[0].startswith(f"**#{running.id}**")
    assert "Queued at Kling" in lines[0] or "Editing" in lines[0]
    assert f"<#{running.thread_id}>" in lines[0] and "%" in lines[0]
    assert lines[1].startswith(f"**#{first.id}**") and "Done" in lines[1]
    assert f"<#{first.thread_id}>" in lines[1]
    assert all(re.search(r"<t:\d+:R>", line) for line in lines)
    # Bob sees his own (empty) history, not Alice's.
    assert "no edits yet" in await command(stack, "jobs", bob)


# --- /quota --------------------------------------------------------------------------------

QUOTA_LINE = re.compile(
    r"\*\*(?P<window>Today|This month):\*\* (?P<used>\d+) s used of (?P<limit>\d+) s"
    r" \((?P<left>\d+) s left\) · resets <t:(?P<reset>\d+):R>"
)


def quota_windows(text: str) -> dict[str, dict[str, int]]:
    return {
        m["window"]: {k: int(m[k]) for k in ("used", "limit", "left", "reset")}
        for m in QUOTA_LINE.finditer(text)
    }


async def test_quota_shows_used_and_left_per_window_and_changes_once_an_edit_is_billed(
    stack: Stack,
) -> None:
    await stack.start_bot(DEFAULT_DAILY_SECONDS="30", DEFAULT_MONTHLY_SECONDS="300")
    before = quota_windows(await command(stack, "quota"))
    windows = Windows.at(time.time())
    assert before == {
        "Today": {"used": 0, "limit": 30, "left": 30, "reset": int(windows.day_end)},
        "This month": {"used": 0, "limit": 300, "left": 300, "reset": int(windows.month_end)},
    }

    job = await deliver(stack, await started_job(stack, "make it snow"))
    assert job.billed_seconds == 4  # a 4 s clip
    after = quota_windows(await command(stack, "quota"))
    assert after["Today"] | {"reset": 0} == {"used": 4, "limit": 30, "left": 26, "reset": 0}
    assert after["This month"]["used"] == 4 and after["This month"]["left"] == 296


# --- the tree's error handler ----------------------------------------------------------------


def assert_apology(text: str, caplog: pytest.LogCaptureFixture) -> None:
    match = re.search(r"Something went wrong.*reference `(?P<ref>[0-9a-f]+)`", text)
    assert match, text
    assert SECRET_DETAIL not in text and "RuntimeError" not in text and "Traceback" not in text
    # Whoever reads the logs can find the failure from the reference the member was given.
    logged = [r for r in caplog.records if match["ref"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert SECRET_DETAIL in str(logged[0].exc_info[1])


async def test_a_command_that_breaks_after_deferring_still_answers_the_member(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await stack.start_bot()
    assert bot.services is not None

    async def broken_submit(request: EditRequest) -> Job:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(bot.services.engine, "submit", broken_submit)
    caplog.set_level(logging.ERROR)
    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip()})
    answer = await ephemeral_answer(stack, ix)
    assert ix.deferred  # /edit deferred first: the apology replaced "thinking…"
    assert_apology(answer.content, caplog)
    assert stack.sim.create_attempts == 0
    assert stack.emu.messages(stack.world.channel) == []


async def test_a_command_that_breaks_before_answering_still_answers_the_member(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await stack.start_bot()
    assert bot.services is not None

    async def broken_history(*args: object, **kwargs: object) -> list[Job]:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(bot.services.jobs, "recent_for_user", broken_history)
    caplog.set_level(logging.ERROR)
    ix = await stack.emu.send_slash_command(
        stack.world.guild, stack.world.channel, stack.world.member, "jobs"
    )
    answer = await ephemeral_answer(stack, ix)
    assert not ix.deferred and ix.original is answer  # answered directly, not as a followup
    assert_apology(answer.content, caplog)


# --- the configured model ------------------------------------------------------------------


async def test_the_fast_model_changes_every_range_a_member_sees_and_every_check(
    stack: Stack,
) -> None:
    await stack.start_bot(EVOLINK_MODEL="kling-o1-video-edit-fast")
    synced = stack.world.app.guild_commands[stack.world.guild.id]
    [edit] = [command for command in synced if command["name"] == "edit"]
    options = {option["name"]: option["description"] for option in edit["options"]}
    assert edit["description"] == "Edit a 6–20 s video clip with Kling AI"
    assert options["video"] == (
        "The clip: .mp4 or .mov up to 100 MB; 6–20 s is edited, a longer clip is cut"
    )
    assert options["start"].endswith("a longer clip is cut to 20 s from there")
    assert "Try `/edit` with a 6–20 s clip!" in await command(stack, "jobs")
    assert "rounded up: 6–20 s per edit." in await command(stack, "quota")
    assert "3–10" not in str(edit)

    # Shorter than the fast model's 6 s: accepted and billed as 6 s (§6), and said so.
    short = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=4.0)})
    accepted = (await ephemeral_answer(stack, short)).content
    assert "started (4.0 s clip, billed as 6 s, this model's minimum)" in accepted
    long = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=15.0)})
    assert "started (billed as 15 s)" in (await ephemeral_answer(stack, long)).content
    assert {task.model for task in stack.sim.tasks.values()} == {"kling-o1-video-edit-fast"}
    assert len(stack.sim.tasks) == 2
