"""A job row and the SQL pieces every statement on the jobs table shares."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storage.database import AsyncConn, DbRow, SyncConn
from storage.models import Job, JobSource, JobState, NewJob

# A job row's columns, named in full: SQLAlchemy then knows the result's layout in advance
# (`columns=`) instead of rebuilding it from each of the tracker's many results.
JOB_COLUMNS = tuple(Job.model_fields)
JOB_ROW = ", ".join(JOB_COLUMNS)


def row_to_job(row: DbRow) -> Job:
    data = row._asdict()
    data["source"] = JobSource.model_validate_json(data["source"])
    data["keep_audio"] = bool(data["keep_audio"])
    return Job.model_validate(data)


def states_in(states: Iterable[JobState]) -> tuple[str, list[str]]:
    """`state IN (?, …)` and its parameters."""
    values = sorted(state.value for state in states)
    return f"state IN ({', '.join('?' for _ in values)})", values


def encode_column(name: str, value: Any) -> Any:
    if name == "source" and isinstance(value, JobSource):
        return value.model_dump_json()
    return value


async def fetch_job(conn: AsyncConn, job_id: int) -> Job | None:
    cursor = await conn.execute(
        f"SELECT {JOB_ROW} FROM jobs WHERE id = ?", (job_id,), columns=JOB_COLUMNS
    )
    row = await cursor.fetchone()
    return row_to_job(row) if row else None


def create_sync(raw: SyncConn, new: NewJob, now: float) -> Job:
    rows = raw.execute(
        "INSERT INTO jobs (guild_id, channel_id, user_id, state, model, prompt, keep_audio,"
        " source, parent_job_id, callback_secret, created_at, updated_at, leased_by,"
        " lease_until)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {JOB_ROW}",
        (
            new.guild_id,
            new.channel_id,
            new.user_id,
            JobState.RECEIVED.value,
            new.model,
            new.prompt,
            int(new.keep_audio),
            new.source.model_dump_json(),
            new.parent_job_id,
            new.callback_secret,
            now,
            now,
            new.owner,
            new.lease_until,
        ),
        columns=JOB_COLUMNS,
    ).fetchall()
    job = row_to_job(rows[0])
    raw.execute(
        "INSERT INTO job_events (job_id, at, from_state, to_state) VALUES (?, ?, NULL, ?)",
        (job.id, now, JobState.RECEIVED.value),
    )
    return job
