from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from storage.database import Database, MigrationError
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository, NewMediaObject, expire_inputs_sync
from storage.models import JobSource, JobState, LedgerKind, MediaRole, NewJob, UsageSnapshot
from storage.quota import QuotaRepository
from storage.schema import legacy_migrations
from storage.transitions import IllegalTransition, StaleTransition
from tests.conftest import DatabaseLocation

pytestmark = pytest.mark.both_engines

BASELINE = "0004"
HEAD = "0008"  # the servers the first-steps guide was posted in
LEASES = "0005"  # job leases with an owner
UNLOGGED_RATE = "0006"  # the shared rate bucket unlogged (PostgreSQL)
BALANCE_READINGS = "0007"  # the provider balance over time
DAY = 86400.0
NOW = 1_800_000_000.0


def new_job(user_id: int = 7, guild_id: int = 1) -> NewJob:
    return NewJob(
        guild_id=guild_id,
        channel_id=2,
        user_id=user_id,
        model="kling-o1-video-edit",
        prompt="make it snow",
        source=JobSource(video_url="https://cdn.example/clip.mp4"),
        callback_secret="s" * 32,
    )


async def fetching_job(jobs: JobRepository, user_id: int = 7) -> int:
    job = await jobs.create(new_job(user_id), now=NOW)
    await jobs.transition(job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=NOW)
    return job.id


class Refused(Exception):
    pass


def limit_to(seconds: int):  # type: ignore[no-untyped-def]
    def decide(snapshot: UsageSnapshot) -> None:
        if snapshot.used_today + 10 > seconds:
            raise Refused(f"used {snapshot.used_today}")

    return decide


async def test_migrations_apply_once_and_second_run_is_a_noop(
    database_location: DatabaseLocation,
) -> None:
    db = await database_location.open(migrate=False)
    assert await db.schema_version() is None
    assert await db.migrate() == [BASELINE, LEASES, UNLOGGED_RATE, BALANCE_READINGS, HEAD]
    assert await db.migrate() == []
    assert await db.schema_version() == HEAD
    await db.close()
    reopened = await database_location.open()
    assert await reopened.schema_version() == HEAD
    await reopened.close()


async def test_a_sqlite_database_from_before_alembic_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as old:  # as the numbered migrations left it at 0002
        for version, _, script in legacy_migrations()[:2]:
            old.executescript(script)
            old.execute(f"PRAGMA user_version = {version}")
        old.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, state, model, prompt, source,"
            " callback_secret, created_at, updated_at) VALUES (1, 2, 7, 'received', 'm', 'p',"
            " '{}', 's', 1, 1)"
        )
        old.commit()
    db = await Database.open(path)
    try:
        assert await db.schema_version() == HEAD
        rows = await db.fetch("SELECT prompt, poll_errors FROM jobs")  # 0003's column
        assert [tuple(row) for row in rows] == [("p", 0)]
    finally:
        await db.close()


async def test_sqlite_connections_use_wal(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "wal.sqlite3")
    try:
        async with db.read() as conn:
            mode = await (await conn.execute("PRAGMA journal_mode")).fetchone()
    finally:
        await db.close()
    assert mode is not None and mode[0] == "wal"


async def test_foreign_keys_are_enforced(db: Database) -> None:
    media = MediaRepository(db)
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        await media.add(
            NewMediaObject(
                token="t",
                job_id=999,
                role=MediaRole.RESULT,
                relative_path="x",
                filename="x.mp4",
                content_type="video/mp4",
                size_bytes=1,
                sha256="0",
            ),
            now=NOW,
        )


async def test_a_sqlite_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with closing(sqlite3.connect(path)) as newer:
        newer.execute("PRAGMA user_version = 99")
    with pytest.raises(MigrationError, match="newer than this code"):
        await Database.open(path)


async def test_a_database_at_an_unknown_revision_is_refused(db: Database) -> None:
    await db.fetch("UPDATE alembic_version SET version_num = 'from-the-future'")
    with pytest.raises(MigrationError, match="unknown to this code"):
        await db.migrate()


async def test_transitions_are_guarded_and_recorded(db: Database) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    assert job.state is JobState.RECEIVED and job.source.video_url.endswith("clip.mp4")
    await jobs.transition(job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=NOW + 1)
    with pytest.raises(StaleTransition):
        await jobs.transition(job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=NOW)
    failed = await jobs.transition(
        job.id,
        JobState.REJECTED,
        expected={JobState.FETCHING},
        now=NOW + 2,
        error_code="video_too_long",
        error_message="The clip is 41.2 s long",
    )
    assert failed.ended_at == NOW + 2 and failed.error_code == "video_too_long"
    events = await jobs.events(job.id)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, JobState.RECEIVED),
        (JobState.RECEIVED, JobState.FETCHING),
        (JobState.FETCHING, JobState.REJECTED),
    ]


async def test_failed_transaction_writes_nothing(db: Database) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    with pytest.raises(ValueError, match="not updatable"):
        await jobs.transition(job.id, JobState.FETCHING, expected=None, now=NOW, user_id=3)
    assert (await jobs.get(job.id)).state is JobState.RECEIVED  # type: ignore[union-attr]
    assert len(await jobs.events(job.id)) == 1


async def test_concurrent_reservations_at_the_limit_let_exactly_one_win(db: Database) -> None:
    jobs, quota = JobRepository(db), QuotaRepository(db)
    first, second = await fetching_job(jobs), await fetching_job(jobs)

    async def reserve(job_id: int) -> bool:
        job = await jobs.get(job_id)
        assert job is not None
        try:
            await quota.reserve(
                job,
                billed_seconds=10,
                quota_seconds=10,
                credits=120.0,
                duration_s=9.5,
                role_ids=[],
                day_start=NOW - 10,
                month_start=NOW - DAY,
                now=NOW,
                decide=limit_to(15),
            )
        except Refused:
            return False
        return True

    outcomes = await asyncio.gather(reserve(first), reserve(second))
    assert sorted(outcomes) == [False, True]
    states = {(await jobs.get(i)).state for i in (first, second)}  # type: ignore[union-attr]
    assert states == {JobState.RESERVED, JobState.FETCHING}


async def test_refund_is_written_once_and_gives_the_seconds_back(db: Database) -> None:
    jobs, quota = JobRepository(db), QuotaRepository(db)
    job_id = await fetching_job(jobs)
    job = await jobs.get(job_id)
    assert job is not None
    await quota.reserve(
        job,
        billed_seconds=8,
        quota_seconds=8,
        credits=96.0,
        duration_s=7.2,
        role_ids=[],
        day_start=NOW - 10,
        month_start=NOW - DAY,
        now=NOW,
        decide=lambda _: None,
    )
    window = {
        "guild_id": 1,
        "user_id": 7,
        "role_ids": [],
        "day_start": NOW - 10,
        "month_start": NOW - DAY,
    }
    assert (await quota.snapshot(**window)).used_today == 8  # type: ignore[arg-type]
    await quota.close_job(
        job_id, LedgerKind.REFUND, JobState.FAILED, expected={JobState.RESERVED}, now=NOW + 5,
        inputs_expire_at=NOW + 3600,
    )
    # A second close (e.g. a duplicate callback) must not refund twice.
    await quota.close_job(
        job_id, LedgerKind.REFUND, JobState.FAILED, expected={JobState.FAILED}, now=NOW + 6,
        inputs_expire_at=NOW + 3600,
    )
    snapshot = await quota.snapshot(**window)  # type: ignore[arg-type]
    assert snapshot.used_today == 0 and snapshot.active_jobs == 0
    kinds = [entry.kind for entry in await quota.entries_for_job(job_id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_racing_closes_from_two_connections_refund_once(
    db: Database, database_location: DatabaseLocation
) -> None:
    # A failure callback handled by two processes at once: one refund, never two.
    jobs, quota = JobRepository(db), QuotaRepository(db)
    job = await jobs.get(await fetching_job(jobs))
    assert job is not None
    await quota.reserve(
        job, billed_seconds=8, quota_seconds=8, credits=96.0, duration_s=7.2, role_ids=[],
        day_start=NOW - 10,
        month_start=NOW - DAY, now=NOW, decide=lambda _: None,
    )
    other = await database_location.open()
    try:
        await asyncio.gather(*(
            QuotaRepository(each).close_job(
                job.id, LedgerKind.REFUND, JobState.FAILED,
                expected={JobState.RESERVED, JobState.FAILED}, now=NOW + 5,
                inputs_expire_at=NOW + 3600,
            )
            for each in (db, other, db, other)
        ))
    finally:
        await other.close()
    kinds = [entry.kind for entry in await quota.entries_for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.REFUND]


async def test_usage_windows_grants_and_resets(db: Database) -> None:
    jobs, quota = JobRepository(db), QuotaRepository(db)
    for offset, seconds in ((-2 * DAY, 10), (-60, 5)):
        job_id = await fetching_job(jobs)
        job = await jobs.get(job_id)
        assert job is not None
        await quota.reserve(
            job,
            billed_seconds=seconds,
            quota_seconds=seconds,
            credits=0,
            duration_s=seconds,
            role_ids=[],
            day_start=0,
            month_start=0,
            now=NOW + offset,
            decide=lambda _: None,
        )
    window = {
        "guild_id": 1,
        "user_id": 7,
        "role_ids": [],
        "day_start": NOW - 3600,
        "month_start": NOW - 5 * DAY,
    }
    snapshot = await quota.snapshot(**window)  # type: ignore[arg-type]
    assert (snapshot.used_today, snapshot.used_month, snapshot.guild_used_month) == (5, 15, 15)
    await quota.grant(1, 7, 30, actor_id=99, now=NOW)
    assert (await quota.snapshot(**window)).granted_today == 30  # type: ignore[arg-type]
    await quota.reset(1, 7, actor_id=99, now=NOW + 1)
    after = await quota.snapshot(**window)  # type: ignore[arg-type]
    assert (after.used_today, after.used_month, after.guild_used_month) == (0, 0, 15)


async def test_media_tokens_stop_resolving_when_expired_or_deleted(db: Database) -> None:
    jobs, media = JobRepository(db), MediaRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    stored = await media.add(
        NewMediaObject(
            token="a" * 32,
            job_id=job.id,
            role=MediaRole.INPUT_VIDEO,
            relative_path="in/a.mp4",
            filename="clip.mp4",
            content_type="video/mp4",
            size_bytes=10,
            sha256="f" * 64,
        ),
        now=NOW,
    )
    assert await media.live_by_token("a" * 32, now=NOW) == stored
    await db.run(lambda raw: expire_inputs_sync(raw, job.id, NOW + 60))
    await db.run(lambda raw: expire_inputs_sync(raw, job.id, NOW + 600))  # never lengthens
    assert await media.live_by_token("a" * 32, now=NOW + 59) is not None
    assert await media.live_by_token("a" * 32, now=NOW + 60) is None
    assert [m.id for m in await media.expired(now=NOW + 61)] == [stored.id]
    await media.mark_deleted(stored.id, now=NOW + 61)
    assert await media.expired(now=NOW + 61) == []
    assert await media.for_job(job.id) == []


async def test_bookkeeping_updates_keep_the_state_and_the_end_time(db: Database) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    await jobs.transition(job.id, JobState.REJECTED, expected=None, now=NOW + 1)
    updated = await jobs.update(job.id, now=NOW + 50, status_message_id=42)
    assert updated.state is JobState.REJECTED and updated.ended_at == NOW + 1
    assert updated.status_message_id == 42 and len(await jobs.events(job.id)) == 2


async def test_the_transitions_table_is_enforced(db: Database) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    with pytest.raises(IllegalTransition, match="no transition from received to submitted"):
        await jobs.transition(job.id, JobState.SUBMITTED, expected=None, now=NOW)
    with pytest.raises(IllegalTransition):  # refused up front, whatever the job's state
        await jobs.transition(job.id, JobState.ARCHIVED, expected={JobState.SUBMITTED}, now=NOW)
    rejected = await jobs.transition(job.id, JobState.REJECTED, expected=None, now=NOW + 1)
    for state in JobState:  # a terminal state is final
        if state is not JobState.REJECTED:
            with pytest.raises(IllegalTransition):
                await jobs.transition(job.id, state, expected=None, now=NOW + 2)
    assert await jobs.get(job.id) == rejected
    assert len(await jobs.events(job.id)) == 2


async def test_a_stale_field_update_writes_nothing(db: Database) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    with pytest.raises(StaleTransition):
        await jobs.update(job.id, now=NOW + 1, expected={JobState.SUBMITTED}, next_poll_at=0.0)
    with pytest.raises(StaleTransition):
        await jobs.update(job.id + 1, now=NOW + 1, next_poll_at=0.0)
    assert await jobs.get(job.id) == job


async def submitted_job(jobs: JobRepository, next_poll_at: float) -> int:
    job = await jobs.create(new_job(), now=NOW)
    for step in (JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED, JobState.SUBMITTING):
        await jobs.transition(job.id, step, expected=None, now=NOW)
    await jobs.transition(
        job.id, JobState.SUBMITTED, expected=None, now=NOW, next_poll_at=next_poll_at
    )
    return job.id


async def test_lease_due_takes_due_jobs_once_and_says_when_to_look_again(db: Database) -> None:
    jobs = JobRepository(db)
    late, busy, early, later = [
        await submitted_job(jobs, at) for at in (NOW - 5, NOW - 9, NOW - 1, NOW + 30)
    ]
    archived = await submitted_job(jobs, NOW - 2)
    for step in (JobState.DOWNLOADING, JobState.ARCHIVED):
        await jobs.transition(archived, step, expected=None, now=NOW, next_delivery_at=NOW)
    due = await jobs.lease_due(NOW, until=NOW + 60, limit=1, skip={busy})
    assert [job.id for job in due.polls] == [late]  # most overdue first, busy skipped
    assert [job.id for job in due.deliveries] == [archived]
    assert due.polls[0].next_poll_at == NOW + 60 and due.next_due == NOW - 9
    due = await jobs.lease_due(NOW, until=NOW + 60, limit=10, skip={busy})
    assert [job.id for job in due.polls] == [early] and due.deliveries == []
    assert due.next_due == NOW - 9
    due = await jobs.lease_due(NOW, until=NOW + 60, limit=10)
    assert [job.id for job in due.polls] == [busy] and due.next_due == NOW + 30
    assert later not in [job.id for job in due.polls]


async def test_the_shared_rate_bucket_waits_for_no_disk_write(db: Database) -> None:
    """Every provider call of every process takes a token from one row: logged, each take
    held the row's lock through its commit's WAL flush (bench figure 8)."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite serves one process, whose limiter is in memory")
    rows = await db.fetch(
        "SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_buckets'"
        " AND relnamespace = current_schema()::regnamespace"
    )
    assert [row[0] for row in rows] == ["u"]


async def test_the_first_steps_guide_is_claimed_once_per_server_even_by_racing_claims(
    db: Database,
) -> None:
    guilds = GuildRepository(db)
    claims = await asyncio.gather(*(guilds.claim_guide(7, now=NOW) for _ in range(8)))
    assert sorted(claims) == [False] * 7 + [True]
    assert await guilds.claim_guide(7, now=NOW + 86400) is False  # nor on a later start
    assert await guilds.claim_guide(8, now=NOW) is True  # another server has its own
