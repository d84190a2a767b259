"""`python -m bot migrate-sqlite-to-postgres`: a SQLite database of this bot, copied into an
empty PostgreSQL one, reads back the same through the bot's repositories and keeps counting
ids after the copied ones (real PostgreSQL, a schema per test; skipped without one)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from bot.__main__ import main
from storage.admin import AdminRepository
from storage.database import Database, SyncConn
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository, NewMediaObject
from storage.models import JobSource, JobState, LedgerKind, MediaRole, NewJob
from storage.quota import QuotaRepository
from storage.sqlite_to_postgres import CopyRefused, copy_database
from tests.conftest import DatabaseLocation

NOW = 1_800_000_000.0
GUILD = 11
MEMBER = 7
MODERATOR = 99


@pytest.fixture
def engine() -> str:
    """`database_location` is the PostgreSQL target (a fresh schema), or the test skips."""
    return "postgresql"


def new_job(parent: int | None = None) -> NewJob:
    return NewJob(
        guild_id=GUILD, channel_id=2, user_id=MEMBER, model="kling-o1-video-edit",
        prompt="make it snow", source=JobSource(video_url="https://cdn.example/clip.mp4"),
        callback_secret="s" * 32, parent_job_id=parent,
    )


async def reserved_job(db: Database, parent: int | None = None) -> int:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(parent), now=NOW)
    job = await jobs.transition(job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=NOW)
    await QuotaRepository(db).reserve(
        job, billed_seconds=10, quota_seconds=10, credits=120.0, duration_s=9.5, role_ids=[],
        day_start=NOW - 10, month_start=NOW - 86400, now=NOW, decide=lambda _: None,
    )
    return job.id


async def bot_database(path: Path) -> list[int]:
    """A SQLite database the way the bot leaves it: jobs (a re-run among them; the newest
    deleted, its id never to be reused), ledger entries, media objects, a block and audit
    rows. Returns the job ids."""
    db = await Database.open(path)
    try:
        first = await reserved_job(db)
        rerun = await reserved_job(db, parent=first)
        deleted = await reserved_job(db)
        await QuotaRepository(db).close_job(
            first, LedgerKind.REFUND, JobState.FAILED, expected={JobState.RESERVED}, now=NOW,
            inputs_expire_at=NOW + 3600,
        )
        await MediaRepository(db).add(NewMediaObject(
            token="t" * 22, job_id=rerun, role=MediaRole.INPUT_VIDEO,
            relative_path="inputs/a.mp4", filename="a.mp4", content_type="video/mp4",
            size_bytes=1234, sha256="0" * 64, expires_at=NOW + 60, kept_until=NOW + 600,
        ), now=NOW)
        await QuotaRepository(db).grant(
            GUILD, MEMBER, 30, actor_id=MODERATOR, now=NOW, note="contest", audit=True
        )
        await AdminRepository(db).block(GUILD, 5, reason="spam", actor_id=MODERATOR, now=NOW)

        def delete(conn: SyncConn) -> None:
            for table, key in (("quota_ledger", "job_id"), ("job_events", "job_id"),
                               ("jobs", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (deleted,))

        await db.run(delete)
    finally:
        await db.close()
    return [first, rerun, deleted]


@dataclass
class Source:
    db: Database
    first: int
    rerun: int
    deleted: int


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[Source]:
    """The bot's SQLite database, open; the conftest's `db` is the PostgreSQL target."""
    path = tmp_path / "kling.sqlite3"
    first, rerun, deleted = await bot_database(path)
    database = await Database.open(path)
    yield Source(database, first, rerun, deleted)
    await database.close()


async def test_every_row_reads_back_the_same_and_new_ids_follow_the_copied_ones(
    source: Source, db: Database,
) -> None:
    copied = await copy_database(source.db, db)

    assert copied["jobs"] == 2 and copied["quota_ledger"] == 4
    assert copied["media_objects"] == 1 and copied["blocked_users"] == 1
    assert list(copied).index("jobs") < list(copied).index("job_events")
    for job_id in (source.first, source.rerun):
        assert await JobRepository(db).get(job_id) == await JobRepository(source.db).get(job_id)
        assert await JobRepository(db).events(job_id) == await JobRepository(
            source.db).events(job_id)
        assert await QuotaRepository(db).entries_for_job(job_id) == (
            await QuotaRepository(source.db).entries_for_job(job_id))
    rerun = await JobRepository(db).get(source.rerun)
    assert rerun is not None and rerun.parent_job_id == source.first
    assert await MediaRepository(db).for_job(source.rerun) == await MediaRepository(
        source.db).for_job(source.rerun)
    assert await GuildRepository(db).audit_entries(GUILD) == await GuildRepository(
        source.db).audit_entries(GUILD)
    assert await GuildRepository(db).blocked(GUILD, 5) == await GuildRepository(
        source.db).blocked(GUILD, 5)
    assert await QuotaRepository(db).guild_used(GUILD, NOW - 1) == (
        await QuotaRepository(source.db).guild_used(GUILD, NOW - 1))

    # The bot carries on in PostgreSQL: ids continue after every id SQLite issued (the
    # deleted job's id included), in every table with an identity.
    assert await reserved_job(db) > source.deleted > source.rerun
    audit = await AdminRepository(db).record(
        GUILD, actor_id=MODERATOR, action="test", target=None, detail=None, now=NOW
    )
    assert audit.id > max(e.id for e in await GuildRepository(source.db).audit_entries(GUILD))


async def test_a_target_holding_data_is_refused_and_left_as_it_was(
    source: Source, db: Database,
) -> None:
    existing = await reserved_job(db)
    with pytest.raises(CopyRefused, match=r"already holds data .*jobs"):
        await copy_database(source.db, db)
    assert [job.id for job in await JobRepository(db).recent_for_user(GUILD, MEMBER)] == [
        existing
    ]


async def test_a_target_shared_with_another_application_is_refused(
    source: Source, db: Database,
) -> None:
    await db.run(lambda conn: conn.execute("CREATE TABLE invoices (number BIGINT)"))
    with pytest.raises(CopyRefused, match="differ in invoices: the target must be an empty"):
        await copy_database(source.db, db)
    assert await JobRepository(db).recent_for_user(GUILD, MEMBER) == []


async def test_a_row_postgresql_refuses_rolls_the_whole_copy_back(
    source: Source, db: Database,
) -> None:
    # SQLite keeps what its column type cannot hold; PostgreSQL's BIGINT refuses it, late in
    # the copy (audit_log comes after jobs and the ledger).
    await source.db.run(
        lambda conn: conn.execute("UPDATE audit_log SET actor_id = 'not a snowflake'")
    )
    with pytest.raises(DBAPIError, match="not a snowflake"):
        await copy_database(source.db, db)
    assert await JobRepository(db).recent_for_user(GUILD, MEMBER) == []
    assert await db.fetch("SELECT id FROM quota_ledger") == []


async def test_an_older_sqlite_database_is_refused_untouched(tmp_path: Path, db: Database) -> None:
    source_path = tmp_path / "kling.sqlite3"
    with closing(sqlite3.connect(source_path)) as raw, raw:
        raw.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY)")
        raw.execute("PRAGMA user_version = 3")
    source = await Database.open(source_path, migrate=False)
    try:
        with pytest.raises(CopyRefused, match="run this version of the bot once on it"):
            await copy_database(source, db)
        assert await source.schema_version() is None
    finally:
        await source.close()


def test_the_command_needs_a_postgresql_target_and_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    missing = tmp_path / "nowhere.sqlite3"
    assert main(["migrate-sqlite-to-postgres", "--from", str(missing)]) == 2
    assert "Set DATABASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["migrate-sqlite-to-postgres", "--from", str(missing)]) == 1
    assert f"no SQLite database at {missing}" in capsys.readouterr().err
    assert not missing.exists()
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database, but long enough to have a header " * 4)
    assert main(["migrate-sqlite-to-postgres", "--from", str(not_sqlite)]) == 1
    assert "is not a SQLite database" in capsys.readouterr().err


async def as_administrator(server: str, sql: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def empty_database_url(database_location: DatabaseLocation) -> AsyncIterator[str]:
    """A PostgreSQL database of its own (DATABASE_URL has no schema of its own to name)."""
    server = str(database_location.target)
    name = f"kling_copy_{uuid.uuid4().hex}"
    await as_administrator(server, f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    await as_administrator(server, f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_the_command_copies_into_database_url_and_says_what_it_copied(
    tmp_path: Path, empty_database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source_path = tmp_path / "kling.sqlite3"
    first, rerun, _ = await bot_database(source_path)
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "unused"))

    assert await asyncio.to_thread(
        main, ["migrate-sqlite-to-postgres", "--from", str(source_path)]
    ) == 0
    out = capsys.readouterr().out
    assert f"Copied 17 rows from {source_path} to PostgreSQL:" in out
    assert "  jobs: 2\n" in out and "  quota_ledger: 4\n" in out and "  audit_log: 2\n" in out
    target = await Database.open(empty_database_url)
    try:
        assert [job.id for job in await JobRepository(target).recent_for_user(
            GUILD, MEMBER)] == [rerun, first]
    finally:
        await target.close()

    # Run twice by mistake: refused, nothing doubled.
    assert await asyncio.to_thread(
        main, ["migrate-sqlite-to-postgres", "--from", str(source_path)]
    ) == 1
    assert "already holds data" in capsys.readouterr().err
