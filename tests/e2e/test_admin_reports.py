"""/kling-admin usage, audit and log-channel: what moderators read about the server."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from bot.admin.usage_chart import LEGEND_KEY, TOTALS_KEY
from sandbox.evolink_sim import TaskScript
from storage.models import Job, JobState
from tests.e2e.admin_view import (
    add_moderator,
    admin,
    admin_interaction,
    audited,
    edit_delivered,
    jobs,
    try_edit,
)
from tests.e2e.harness import Stack

CSV_COLUMNS = [
    "id", "created_at", "user_id", "state", "duration_s", "provider_video_duration",
    "billed_seconds", "credits", "provider_credits", "provider_task_id", "error_code",
    "spent_seconds",
]


# No Discord rate limits: several /edits in one channel within seconds are not the point.
pytestmark = pytest.mark.stack(rate_limits=False)


def csv_row(job: Job) -> list[str]:
    """A jobs-table row the way a spreadsheet would read it back."""
    def cell(value: object) -> str:
        return "" if value is None else str(value)

    return [
        str(job.id), datetime.fromtimestamp(job.created_at, UTC).isoformat(), str(job.user_id),
        job.state.value, cell(job.duration_s), cell(job.provider_video_duration),
        cell(job.billed_seconds), cell(job.credits), cell(job.provider_credits),
        cell(job.provider_task_id), cell(job.error_code),
        # Spent: the delivered jobs' billed seconds; a refunded failure spent nothing.
        str(job.billed_seconds if job.state is JobState.DELIVERED else 0),
    ]


def plotted_totals(png: bytes) -> dict[str, int]:
    """The per-day totals the chart plotted, read back from its PNG text metadata."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG" and image.width > 0 and image.height > 0
        totals: dict[str, int] = json.loads(image.info[TOTALS_KEY])
    return totals


def plotted_legend(png: bytes) -> list[str]:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        legend: list[str] = json.loads(image.info[LEGEND_KEY])
    return legend


def csv_totals(rows: list[list[str]]) -> dict[str, int]:
    """Spent seconds per UTC day, summed from the CSV as a spreadsheet would."""
    header, *lines = rows
    day, spent = header.index("created_at"), header.index("spent_seconds")
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[datetime.fromisoformat(line[day]).date().isoformat()] += int(line[spent])
    return totals


async def test_usage_answers_a_leaderboard_and_a_csv_matching_the_jobs_table(
    stack: Stack,
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    alice, bob = stack.world.member, emu.create_member(guild.id, "bob")
    alice.nick = "Alice 🎬"  # the server's name for her, with an emoji the chart cannot draw
    await stack.start_bot()
    await edit_delivered(stack)
    await edit_delivered(stack)
    stack.sim.script_next_task(TaskScript(outcome="failed", error_code="content_policy_violation"))
    assert "started" in await try_edit(stack, member=bob)
    await emu.wait_for(
        lambda: any("did not work out" in m.content for t in emu.threads(stack.world.channel)
                    for m in emu.messages(t)),
        description="bob's failure notice",
    )
    await edit_delivered(stack, member=bob)

    for period in ("month", "day"):
        _, reply = await admin_interaction(stack, mod, "usage", {"period": period})
        attachment, chart = reply.attachments
        start = datetime.now(UTC).date().replace(**({"day": 1} if period == "month" else {}))
        assert attachment.filename == f"kling-usage-{guild.id}-{period}-{start.isoformat()}.csv"
        assert chart.filename == f"kling-usage-{guild.id}-{period}-{start.isoformat()}.png"
        rows = list(csv.reader(io.StringIO(attachment.data.decode())))
        # The chart plots every day of the period, and exactly the CSV's spent seconds.
        plotted = plotted_totals(chart.data)
        assert {day: total for day, total in plotted.items() if total} == csv_totals(rows)
        assert plotted_legend(chart.data) == ["Alice", "bob"]  # the top members by name
        assert sum(plotted.values()) == 12
        assert min(plotted) == start.isoformat()
        table = sorted(await jobs(stack), key=lambda job: job.id)
        assert [job.state for job in table] == [
            JobState.DELIVERED, JobState.DELIVERED, JobState.FAILED, JobState.DELIVERED
        ]
        assert rows == [CSV_COLUMNS, *(csv_row(job) for job in table)]

        billed = [job for job in table if job.state is JobState.DELIVERED]
        credits = sum(job.credits or 0 for job in billed)
        # The provider's figures sit beside ours, and agree: 4 s clips, 48 credits each.
        assert {(j.provider_video_duration, j.provider_credits) for j in billed} == {(4, 48)}
        assert {(j.billed_seconds, j.credits) for j in billed} == {(4, 48)}
        lines = reply.content.splitlines()
        assert lines[0] == (
            f"**Usage this {period}**: 4 jobs, 12 s billed, {credits:.0f} credits"
        )
        assert lines[1].startswith(f"1. <@{alice.user.id}> · 8 s · ")
        assert lines[1].endswith("· 2/2 jobs billed")
        assert lines[2].startswith(f"2. <@{bob.user.id}> · 4 s · ")
        assert lines[2].endswith("· 1/2 jobs billed")  # the failed edit was refunded
        assert len(lines) == 3


async def test_usage_of_an_empty_period_answers_an_empty_chart_not_an_error(
    stack: Stack,
) -> None:
    mod = add_moderator(stack)
    await stack.start_bot()
    _, reply = await admin_interaction(stack, mod, "usage", {"period": "week"})
    assert reply.content.startswith("**Usage this week**: 0 jobs, 0 s billed, 0 credits")
    attachment, chart = reply.attachments
    rows = list(csv.reader(io.StringIO(attachment.data.decode())))
    assert rows == [CSV_COLUMNS]
    plotted = plotted_totals(chart.data)
    assert len(plotted) == 7 and set(plotted.values()) == {0}


async def test_every_change_is_audited_and_mirrored_to_the_log_channel(stack: Stack) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    alice, general = stack.world.member, stack.world.channel
    log = emu.create_text_channel(guild.id, "mod-log")
    studio = emu.create_text_channel(guild.id, "studio")
    vip = emu.create_role(guild.id, "vip")
    await stack.start_bot()

    changes: list[tuple[str, dict[str, Any], str, str]] = [
        ("log-channel set", {"channel": log}, "log_channel.set", f"channel:{log.id}"),
        ("limits set", {"daily_seconds": 30, "cooldown_seconds": 5}, "limits.set", ""),
        ("budget set", {"monthly_seconds": 3000}, "budget.set", ""),
        ("user limit", {"member": alice, "daily_seconds": 20}, "user.limit", "user"),
        ("user grant", {"member": alice, "seconds": 10}, "user.grant", "user"),
        ("user reset", {"member": alice}, "user.reset", "user"),
        ("user block", {"member": alice, "reason": "spam"}, "user.block", "user"),
        ("user unblock", {"member": alice}, "user.unblock", "user"),
        ("user limit", {"member": alice}, "user.limit.clear", "user"),
        ("role limit", {"role": vip, "monthly_seconds": 900}, "role.limit", f"role:{vip.id}"),
        ("role clear", {"role": vip}, "role.limit.clear", f"role:{vip.id}"),
        ("channels allow", {"channel": studio}, "channels.allow", f"channel:{studio.id}"),
        ("channels deny", {"channel": general}, "channels.deny", f"channel:{general.id}"),
        ("channels remove", {"channel": general}, "channels.remove", f"channel:{general.id}"),
        ("pause", {"reason": "upgrade"}, "pause", ""),
        ("resume", {}, "resume", ""),
        ("moderator-role set", {"role": vip}, "moderator_role.set", f"role:{vip.id}"),
    ]
    for path, options, _, _ in changes:
        answer = await admin(stack, mod, path, options)
        assert not answer.startswith("❌"), (path, answer)
    for path in ("limits show", "channels list", "jobs list", "usage"):  # reading changes nothing
        await admin(stack, mod, path)
    await admin(stack, mod, "user show", {"member": alice})

    assert await audited(stack, mod) == [(mod.user.id, action) for _, _, action, _ in changes]

    # The log channel got each change as it happened, in order, pinging nobody.
    mirrored = emu.messages(log)
    assert len(mirrored) == len(changes)
    for message, (path, _, action, target) in zip(mirrored, changes, strict=True):
        assert message.content.startswith(f"🛡️ <@{mod.user.id}> · `{action}`"), path
        if target == "user":
            target = f"user:{alice.user.id}"
        assert message.content.endswith(f" · {target}" if target else f"`{action}`"), path
        assert message.mentions == [] and message.pinged_user_ids == [], path
        assert not message.mention_everyone and message.mention_roles == [], path

    # Switching mirroring off is the last thing the log channel hears about.
    answer = await admin(stack, mod, "log-channel set")
    assert "no longer mirrored" in answer
    await admin(stack, mod, "pause")
    last = emu.messages(log)
    assert len(last) == len(changes) + 1 and "`log_channel.set`" in last[-1].content
    assert [m.content for m in emu.messages(studio)] == []


# Discord's real limits: a channel takes 5 messages per 5 s, so the sixth mirrored
# change waits seconds for its slot. The moderator must still get an answer (not
# "The application did not respond", which invites a retry that applies it twice).
@pytest.mark.stack(rate_limits=True)
async def test_answers_stay_in_time_while_the_log_channel_is_rate_limited(
    stack: Stack,
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    alice = stack.world.member
    log = emu.create_text_channel(guild.id, "mod-log")
    await stack.start_bot()
    await admin(stack, mod, "log-channel set", {"channel": log})
    for seconds in range(1, 7):
        answer = await admin(stack, mod, "user grant", {"member": alice, "seconds": seconds})
        assert f"Granted <@{alice.user.id}> {seconds} extra s" in answer
    mirrored = [m.content for m in emu.messages(log)]
    assert len(mirrored) == 7 and all("`user.grant`" in m for m in mirrored[1:])
    shown = await admin(stack, mod, "user show", {"member": alice})
    assert "21 s granted" in shown  # each grant applied exactly once

