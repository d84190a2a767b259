"""AdminService job moderation and reports: listing, re-posting, failing, usage, atomicity."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import storage.admin
import storage.quota
from bot.admin import AdminRefused
from bot.admin.models import Period
from bot.admin.reports import CSV_HEADER, period_window
from bot.media.prober import Prober
from storage.database import Database
from storage.media import NewMediaObject
from storage.models import JobState, LedgerKind, MediaRole
from tests.integration.admin_harness import (
    ALICE,
    BOB,
    DAY,
    GUILD,
    MOD,
    NOW,
    OTHER_GUILD,
    Harness,
    admin_harness,
)

# Moderation reads and writes every table: on both engines.
pytestmark = pytest.mark.both_engines


@pytest.fixture
async def h(db: Database, tmp_path: Path, prober: Prober) -> AsyncIterator[Harness]:
    async with admin_harness(db, tmp_path, prober) as harness:
        yield harness


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError("disk full while writing the audit row")


async def test_jobs_list_filters_by_state_and_member(h: Harness) -> None:
    first = await h.job(JobState.SUBMITTED)
    second = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    third = await h.job(JobState.SUBMITTED, user_id=BOB)
    await h.job(JobState.SUBMITTED, guild_id=OTHER_GUILD)
    everything = await h.service.jobs_list(GUILD)
    assert [j.id for j in everything.jobs] == [third.id, second.id, first.id]
    submitted = await h.service.jobs_list(GUILD, state=" Submitted ", user_id=ALICE)
    assert [j.id for j in submitted.jobs] == [first.id] and submitted.state == "submitted"
    assert [j.id for j in (await h.service.jobs_list(GUILD, limit=1)).jobs] == [third.id]
    with pytest.raises(AdminRefused, match="Unknown job state 'stuck'; use one of: received"):
        await h.service.jobs_list(GUILD, state="stuck")
    with pytest.raises(AdminRefused, match="limit must be between 1 and 50"):
        await h.service.jobs_list(GUILD, limit=500)


async def test_redeliver_returns_the_live_result_and_audits(h: Harness) -> None:
    job = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    media_id = await h.result(job, expires_at=NOW + DAY)
    redelivery = await h.service.jobs_redeliver(GUILD, MOD, job.id)
    assert redelivery.job.id == job.id and redelivery.media.id == media_id
    assert redelivery.audit.action == "jobs.redeliver"
    assert redelivery.audit.target == f"job:{job.id}"
    # Queued for the tracker, which posts it and records the new message as for a first post.
    assert redelivery.job.state is JobState.ARCHIVED
    assert redelivery.job.next_delivery_at == NOW and redelivery.job.delivery_attempts == 0
    # A job whose posting gave up (FAILED) still has its archive and can be re-posted.
    gave_up = await h.job(JobState.FAILED, ledger=LedgerKind.SETTLE, error_code="delivery_failed")
    await h.result(gave_up)
    queued = (await h.service.jobs_redeliver(GUILD, MOD, gave_up.id)).job
    assert (queued.id, queued.state, queued.error_code) == (gave_up.id, JobState.ARCHIVED, None)
    # One that failed at the provider has nothing to post, whatever files are left.
    refused = await h.job(JobState.FAILED, ledger=LedgerKind.REFUND)
    await h.result(refused)
    with pytest.raises(AdminRefused, match="failed before it had a video to post"):
        await h.service.jobs_redeliver(GUILD, MOD, refused.id)


async def test_redeliver_refusals(h: Harness) -> None:
    s = h.service
    with pytest.raises(AdminRefused, match=r"^Job #42 does not exist on this server\.$"):
        await s.jobs_redeliver(GUILD, MOD, 42)
    foreign = await h.job(JobState.DELIVERED, guild_id=OTHER_GUILD, ledger=LedgerKind.SETTLE)
    await h.result(foreign)
    with pytest.raises(AdminRefused, match=f"Job #{foreign.id} does not exist on this server"):
        await s.jobs_redeliver(GUILD, MOD, foreign.id)
    bare = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    with pytest.raises(AdminRefused, match=f"Job #{bare.id} has no archived result to re-post"):
        await s.jobs_redeliver(GUILD, MOD, bare.id)
    expired = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    await h.result(expired, expires_at=NOW)
    with pytest.raises(AdminRefused, match="has no archived result to re-post"):
        await s.jobs_redeliver(GUILD, MOD, expired.id)
    pending = await h.job(JobState.ARCHIVED, ledger=LedgerKind.SETTLE)
    await h.result(pending)
    with pytest.raises(AdminRefused, match=r"is not finished \(archived\)"):
        await s.jobs_redeliver(GUILD, MOD, pending.id)
    assert await h.audit_count() == 0


async def test_fail_stops_a_stuck_job_and_refunds_exactly_once(h: Harness) -> None:
    job = await h.job(JobState.SUBMISSION_UNKNOWN, seconds=9)
    await h.media.add(
        NewMediaObject(
            token="i" * 32, job_id=job.id, role=MediaRole.INPUT_VIDEO,
            relative_path="inputs/a.mp4", filename="clip.mp4", content_type="video/mp4",
            size_bytes=1, sha256="0" * 64,
        ),
        now=NOW,
    )
    h.clock.now = NOW + 100
    failed = await h.service.jobs_fail(GUILD, MOD, job.id, "stuck at 99% for a day")
    assert failed.job.state is JobState.FAILED and failed.refunded_seconds == 9
    assert failed.job.error_code == "moderator_failed" and failed.job.next_poll_at is None
    assert failed.job.ended_at == NOW + 100
    assert "9 s went back" in failed.message
    assert failed.audit.action == "jobs.fail" and failed.audit.target == f"job:{job.id}"
    with pytest.raises(AdminRefused, match=rf"^Job #{job.id} is already finished \(failed\)\.$"):
        await h.service.jobs_fail(GUILD, MOD, job.id, "again")
    ledger = await h.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds, e.actor_id) for e in ledger] == [
        (LedgerKind.RESERVE, 9, None), (LedgerKind.REFUND, -9, MOD),
    ]
    report = await h.service.user_show(GUILD, ALICE)
    assert report.today.used == 0 and report.active_jobs == 0
    inputs = await h.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    assert inputs[0].expires_at == NOW + 100 + 600  # unpublished after the grace period
    events = await h.jobs.events(job.id)
    assert events[-1].to_state is JobState.FAILED and events[-1].detail == "moderator_failed"
    assert await h.audit_count() == 1


@pytest.mark.parametrize(
    ("state", "ledger", "says"),
    [
        (JobState.SUBMITTED, None, "the provider cannot cancel it. The bot keeps tracking it "
         "and delivers it if it completes; if the provider fails it, it is refunded "
         "automatically."),
        (JobState.DOWNLOADING, LedgerKind.SETTLE, "the provider has completed it and billed it"),
        (JobState.ARCHIVED, LedgerKind.SETTLE, "/kling-admin jobs redeliver posts it again"),
    ],
)
async def test_fail_refuses_a_job_the_provider_holds(
    h: Harness, state: JobState, ledger: LedgerKind | None, says: str
) -> None:
    """No cancel endpoint (EVOLINK_API.md §3): the task runs and is billed whatever we mark,
    so the job keeps being tracked and nothing goes back to the member."""
    job = await h.job(JobState.SUBMITTED, seconds=6)
    if ledger is not None:  # completed at the provider: settled
        job = await h.quota.close_job(
            job.id, ledger, JobState.DOWNLOADING, expected={JobState.SUBMITTED}, now=NOW,
            inputs_expire_at=NOW + DAY,
        )
        if state is JobState.ARCHIVED:
            job = await h.jobs.transition(job.id, state, expected=None, now=NOW)
    before = await h.quota.entries_for_job(job.id)
    with pytest.raises(AdminRefused, match=rf"^Job #{job.id} was not changed: ") as refused:
        await h.service.jobs_fail(GUILD, MOD, job.id, "stuck at 99%")
    assert says in str(refused.value)
    after = await h.jobs.get(job.id)
    assert after is not None and after.state is state and after.error_code is None
    assert await h.quota.entries_for_job(job.id) == before
    assert await h.audit_count() == 0


async def test_fail_refuses_a_job_whose_create_call_is_in_flight(h: Harness) -> None:
    job = await h.job(JobState.RESERVED, seconds=6)
    for step in (JobState.REHOSTED, JobState.SUBMITTING):
        job = await h.jobs.transition(job.id, step, expected=None, now=NOW)
    with pytest.raises(AdminRefused, match="being sent to the provider right now"):
        await h.service.jobs_fail(GUILD, MOD, job.id, "stuck")
    assert (await h.jobs.get(job.id)).state is JobState.SUBMITTING  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "state",
    [JobState.RECEIVED, JobState.FETCHING, JobState.RESERVED, JobState.SUBMISSION_UNKNOWN],
)
async def test_fail_works_from_any_unfinished_state(h: Harness, state: JobState) -> None:
    job = await h.job(state, seconds=4)
    failed = await h.service.jobs_fail(GUILD, MOD, job.id, "cleanup")
    assert failed.job.state is JobState.FAILED
    # Only a job that reached its reservation has seconds to give back.
    reserved = state in (JobState.RESERVED, JobState.SUBMISSION_UNKNOWN)
    assert failed.refunded_seconds == (4 if reserved else 0)
    assert ("went back" in failed.message) == reserved


async def test_refetch_hands_a_job_back_to_the_tracker_and_audits(h: Harness) -> None:
    missing = await h.job(
        JobState.FAILED, ledger=LedgerKind.SETTLE, error_code="result_missing"
    )
    h.clock.now = NOW + 50
    refetch = await h.service.jobs_refetch(GUILD, MOD, missing.id)
    queued = refetch.job
    assert (queued.state, queued.error_code, queued.result_url) == (
        JobState.DOWNLOADING, None, None
    )
    assert queued.next_poll_at == NOW + 50 and queued.download_attempts == 0
    assert refetch.audit.action == "jobs.refetch" and refetch.audit.target == f"job:{missing.id}"
    assert f"`{missing.provider_task_id}`" in refetch.message
    assert h.mirror.seen == []  # no log channel set
    # A job still waiting for the provider is asked now; nothing else changes.
    waiting = await h.job(JobState.SUBMITTED)
    asked = (await h.service.jobs_refetch(GUILD, MOD, waiting.id)).job
    assert (asked.state, asked.next_poll_at) == (JobState.SUBMITTED, NOW + 50)
    kinds = [e.kind for e in await h.quota.entries_for_job(missing.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]  # no second charge, no refund
    assert await h.audit_count() == 2


async def test_refetch_refusals_write_nothing(h: Harness) -> None:
    s = h.service
    done = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    with pytest.raises(AdminRefused, match="already has its video; use `/kling-admin jobs redel"):
        await s.jobs_refetch(GUILD, MOD, done.id)
    refused = await h.job(JobState.FAILED, ledger=LedgerKind.REFUND)
    with pytest.raises(AdminRefused, match=r"failed at the provider \(content_policy\)"):
        await s.jobs_refetch(GUILD, MOD, refused.id)
    unknown = await h.job(JobState.SUBMISSION_UNKNOWN)
    with pytest.raises(AdminRefused, match="never got a provider task"):
        await s.jobs_refetch(GUILD, MOD, unknown.id)
    foreign = await h.job(JobState.SUBMITTED, guild_id=OTHER_GUILD)
    with pytest.raises(AdminRefused, match="does not exist on this server"):
        await s.jobs_refetch(GUILD, MOD, foreign.id)
    assert await h.audit_count() == 0


async def test_fail_refusals_write_nothing(h: Harness) -> None:
    s = h.service
    with pytest.raises(AdminRefused, match=r"^Job #42 does not exist on this server\.$"):
        await s.jobs_fail(GUILD, MOD, 42, "gone")
    foreign = await h.job(JobState.SUBMITTED, guild_id=OTHER_GUILD)
    with pytest.raises(AdminRefused, match="does not exist on this server"):
        await s.jobs_fail(GUILD, MOD, foreign.id, "not ours")
    done = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    with pytest.raises(AdminRefused, match=rf"Job #{done.id} is already finished \(delivered\)"):
        await s.jobs_fail(GUILD, MOD, done.id, "too late")
    with pytest.raises(AdminRefused, match="A reason is required"):
        await s.jobs_fail(GUILD, MOD, foreign.id, "   ")
    assert (await h.jobs.get(foreign.id)).state is JobState.SUBMITTED  # type: ignore[union-attr]
    assert await h.audit_count() == 0


async def test_a_failing_audit_write_rolls_the_change_back(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await h.job(JobState.SUBMISSION_UNKNOWN, seconds=9)
    monkeypatch.setattr(storage.admin, "write_audit", _boom)
    monkeypatch.setattr(storage.quota, "write_audit", _boom)
    with pytest.raises(RuntimeError, match="disk full"):
        await h.service.user_limit(GUILD, MOD, ALICE, daily_seconds=30)
    with pytest.raises(RuntimeError, match="disk full"):
        await h.service.limits_set(GUILD, MOD, daily_seconds=30)
    with pytest.raises(RuntimeError, match="disk full"):
        await h.service.user_grant(GUILD, MOD, ALICE, 30)
    with pytest.raises(RuntimeError, match="disk full"):
        await h.service.jobs_fail(GUILD, MOD, job.id, "stuck")
    assert await h.rows("SELECT * FROM user_limits") == []
    assert await h.rows("SELECT * FROM guild_settings") == []
    assert await h.rows("SELECT * FROM quota_ledger WHERE kind != 'reserve'") == []
    kept = await h.jobs.get(job.id)
    assert kept is not None and kept.state is JobState.SUBMISSION_UNKNOWN
    assert await h.audit_count() == 0


async def test_every_change_writes_one_audit_row_with_the_actor(h: Harness) -> None:
    s = h.service
    job = await h.job(JobState.SUBMISSION_UNKNOWN)
    delivered = await h.job(JobState.DELIVERED, ledger=LedgerKind.SETTLE)
    await h.result(delivered)
    changes = [
        await s.limits_set(GUILD, MOD, daily_seconds=30),
        await s.budget_set(GUILD, MOD, 1000),
        await s.user_limit(GUILD, MOD, ALICE, daily_seconds=10),
        await s.user_limit(GUILD, MOD, ALICE),
        await s.user_grant(GUILD, MOD, ALICE, 5),
        await s.user_reset(GUILD, MOD, ALICE),
        await s.user_block(GUILD, MOD, BOB, "spam"),
        await s.user_unblock(GUILD, MOD, BOB),
        await s.role_limit(GUILD, MOD, 500, daily_seconds=40),
        await s.role_clear(GUILD, MOD, 500),
        await s.channels_allow(GUILD, MOD, 61),
        await s.channels_deny(GUILD, MOD, 62),
        await s.channels_remove(GUILD, MOD, 61),
        await s.jobs_redeliver(GUILD, MOD, delivered.id),
        await s.jobs_fail(GUILD, MOD, job.id, "stuck"),
        await s.pause(GUILD, MOD, "maintenance"),
        await s.resume(GUILD, MOD),
        await s.moderator_role_set(GUILD, MOD, 900),
        await s.log_channel_set(GUILD, MOD, 77),
    ]
    rows = await h.rows("SELECT id, actor_id, guild_id FROM audit_log ORDER BY id")
    assert [r["id"] for r in rows] == [c.audit.id for c in changes]
    assert {(r["actor_id"], r["guild_id"]) for r in rows} == {(MOD, GUILD)}
    assert all(c.message for c in changes)


async def test_usage_leaderboard_counts_settled_jobs_only(h: Harness) -> None:
    await h.job(JobState.DELIVERED, user_id=ALICE, seconds=10, ledger=LedgerKind.SETTLE)
    await h.job(JobState.DELIVERED, user_id=ALICE, seconds=7, ledger=LedgerKind.SETTLE)
    await h.job(JobState.FAILED, user_id=ALICE, seconds=9, ledger=LedgerKind.REFUND)
    await h.job(JobState.DELIVERED, user_id=BOB, seconds=20, ledger=LedgerKind.SETTLE)
    await h.job(JobState.FAILED, user_id=BOB, seconds=5, ledger=LedgerKind.RELEASE)
    await h.job(JobState.SUBMITTED, user_id=BOB, seconds=8)
    await h.job(JobState.REJECTED, user_id=BOB)  # no reservation at all
    refunded_later = await h.job(JobState.SUBMISSION_UNKNOWN, user_id=ALICE, seconds=3)
    await h.service.jobs_fail(GUILD, MOD, refunded_later.id, "never reached the provider")
    await h.job(JobState.DELIVERED, user_id=ALICE, seconds=10, at=NOW - 40 * DAY,
                ledger=LedgerKind.SETTLE)  # last month
    await h.job(JobState.DELIVERED, guild_id=OTHER_GUILD, seconds=10, ledger=LedgerKind.SETTLE)

    report = await h.service.usage(GUILD)
    assert report.period is Period.MONTH
    rows = [
        (r.user_id, r.jobs, r.billed_jobs, r.billed_seconds, r.credits, r.pending_seconds)
        for r in report.rows
    ]
    assert rows == [(BOB, 4, 1, 20, 240.0, 8), (ALICE, 4, 2, 17, 204.0, 0)]
    assert (report.total_billed_seconds, report.total_credits) == (37, 444.0)
    assert report.job_count == 8
    assert report.csv_filename == f"kling-usage-{GUILD}-month-2027-01-01.csv"
    # The CSV's spent_seconds (what the chart plots) follow the leaderboard's rule exactly.
    header, *lines = list(csv.reader(io.StringIO(report.csv_text)))
    user, spent = header.index("user_id"), header.index("spent_seconds")
    per_user: dict[int, int] = {}
    for line in lines:
        per_user[int(line[user])] = per_user.get(int(line[user]), 0) + int(line[spent])
    assert per_user == {row.user_id: row.billed_seconds for row in report.rows}


async def test_usage_csv_equals_the_jobs_table(h: Harness) -> None:
    first = await h.job(JobState.DELIVERED, seconds=10, ledger=LedgerKind.SETTLE)
    await h.jobs.update(first.id, now=NOW, provider_credits=118.0, provider_video_duration=10)
    await h.job(JobState.FAILED, user_id=BOB, seconds=9, ledger=LedgerKind.REFUND,
                at=NOW + 0.25)
    await h.job(JobState.RECEIVED, at=NOW + 1)
    await h.job(JobState.DELIVERED, seconds=10, at=NOW - 40 * DAY, ledger=LedgerKind.SETTLE)
    report = await h.service.usage(GUILD, "month")
    parsed = list(csv.reader(io.StringIO(report.csv_text)))
    assert tuple(parsed[0]) == CSV_HEADER
    expected = await h.rows(
        "SELECT id, created_at, user_id, state, duration_s, provider_video_duration,"
        " billed_seconds, credits, provider_credits, provider_task_id, error_code"
        " FROM jobs WHERE guild_id = ? AND created_at >= ? ORDER BY id",
        GUILD, report.since,
    )
    assert len(parsed) - 1 == len(expected) == report.job_count == 3

    def number(cell: str) -> float | None:
        return float(cell) if cell else None

    for line, row in zip(parsed[1:], expected, strict=True):
        stamp = datetime.fromisoformat(line[1])
        assert stamp.tzinfo == UTC and stamp.timestamp() == row["created_at"]
        assert int(line[0]) == row["id"] and int(line[2]) == row["user_id"]
        assert line[3] == row["state"]
        assert number(line[4]) == row["duration_s"]
        assert number(line[5]) == row["provider_video_duration"]
        assert line[6] == ("" if row["billed_seconds"] is None else str(row["billed_seconds"]))
        assert number(line[7]) == row["credits"]
        assert number(line[8]) == row["provider_credits"]
        assert (line[9] or None) == row["provider_task_id"]
        assert (line[10] or None) == row["error_code"]
    # Ours and the provider's side by side: the delivered job's provider figures are shown.
    delivered = parsed[1]
    assert (delivered[4], delivered[5], delivered[6]) == ("9.5", "10.0", "10")
    assert (delivered[7], delivered[8]) == ("120.0", "118.0")


async def test_usage_periods(h: Harness) -> None:
    await h.job(JobState.DELIVERED, seconds=10, ledger=LedgerKind.SETTLE)  # Friday
    await h.job(JobState.DELIVERED, seconds=7, at=NOW - 3 * DAY, ledger=LedgerKind.SETTLE)  # Tue
    await h.job(JobState.DELIVERED, seconds=5, at=NOW - 6 * DAY, ledger=LedgerKind.SETTLE)  # Sat
    day = await h.service.usage(GUILD, "day")
    week = await h.service.usage(GUILD, "WEEK")
    month = await h.service.usage(GUILD)
    assert [r.billed_seconds for r in day.rows] == [10]
    assert [r.billed_seconds for r in week.rows] == [17]
    assert [r.billed_seconds for r in month.rows] == [22]
    monday = datetime(2027, 1, 11, tzinfo=UTC).timestamp()
    assert period_window(Period.WEEK, NOW) == (monday, monday + 7 * DAY)
    with pytest.raises(AdminRefused, match="Unknown period 'year'; use day, week or month"):
        await h.service.usage(GUILD, "year")
