"""Jobs and their append-only event history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite

from storage.database import Database
from storage.models import Job, JobEvent, JobSource, JobState, NewJob

# Columns a transition may set besides `state`; anything else is a programming error.
_UPDATABLE = frozenset(
    {
        "duration_s",
        "billed_seconds",
        "credits",
        "provider_task_id",
        "provider_status",
        "progress",
        "estimated_time_s",
        "result_url",
        "status_message_id",
        "thread_id",
        "delivered_message_id",
        "error_code",
        "error_message",
        "submitted_at",
        "completed_at",
        "delivered_at",
        "ended_at",
        "next_poll_at",
        "poll_count",
        "download_attempts",
        "delivery_attempts",
        "next_delivery_at",
        "source",
    }
)


class StaleTransition(RuntimeError):
    """The job was not in an expected state: someone else moved it first."""

    def __init__(self, job_id: int, actual: JobState | None, expected: Iterable[JobState]):
        names = ", ".join(sorted(state.value for state in expected))
        super().__init__(f"job {job_id} is {actual}, expected one of: {names}")
        self.job_id = job_id
        self.actual = actual


def row_to_job(row: aiosqlite.Row) -> Job:
    data = dict(row)
    data["source"] = JobSource.model_validate_json(data["source"])
    data["keep_audio"] = bool(data["keep_audio"])
    return Job.model_validate(data)


def _encode(name: str, value: Any) -> Any:
    if name == "source" and isinstance(value, JobSource):
        return value.model_dump_json()
    return value


async def fetch_job(conn: aiosqlite.Connection, job_id: int) -> Job | None:
    cursor = await conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
    row = await cursor.fetchone()
    return row_to_job(row) if row else None


async def transition_in(
    conn: aiosqlite.Connection,
    job_id: int,
    to_state: JobState | None,
    *,
    expected: Iterable[JobState] | None,
    now: float,
    detail: str | None = None,
    **fields: Any,
) -> Job:
    """Move a job to `to_state` (and set `fields`) inside the caller's transaction.

    `to_state=None` keeps the current state and only sets `fields`.
    """
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    current = await fetch_job(conn, job_id)
    allowed = set(expected) if expected is not None else None
    if current is None or (allowed is not None and current.state not in allowed):
        raise StaleTransition(job_id, current.state if current else None, allowed or ())
    if to_state is None:
        to_state = current.state
    elif to_state.is_terminal and "ended_at" not in fields:
        fields["ended_at"] = now
    assignments = ", ".join(f"{name} = ?" for name in fields)
    values = [_encode(name, value) for name, value in fields.items()]
    await conn.execute(
        f"UPDATE jobs SET state = ?, updated_at = ?{', ' if fields else ''}{assignments} "
        "WHERE id = ?",
        (to_state.value, now, *values, job_id),
    )
    if current.state is not to_state:
        await conn.execute(
            "INSERT INTO job_events (job_id, at, from_state, to_state, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (job_id, now, current.state.value, to_state.value, detail),
        )
    updated = await fetch_job(conn, job_id)
    assert updated is not None
    return updated


class JobRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewJob, *, now: float) -> Job:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO jobs (guild_id, channel_id, user_id, state, model, prompt, keep_audio,"
                " source, parent_job_id, callback_secret, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            job_id = cursor.lastrowid
            assert job_id is not None
            await conn.execute(
                "INSERT INTO job_events (job_id, at, from_state, to_state) VALUES (?, ?, NULL, ?)",
                (job_id, now, JobState.RECEIVED.value),
            )
            job = await fetch_job(conn, job_id)
        assert job is not None
        return job

    async def get(self, job_id: int) -> Job | None:
        async with self._db.read() as conn:
            return await fetch_job(conn, job_id)

    async def transition(
        self,
        job_id: int,
        to_state: JobState,
        *,
        expected: Iterable[JobState] | None,
        now: float,
        detail: str | None = None,
        **fields: Any,
    ) -> Job:
        async with self._db.transaction() as conn:
            return await transition_in(
                conn, job_id, to_state, expected=expected, now=now, detail=detail, **fields
            )

    async def update(self, job_id: int, *, now: float, **fields: Any) -> Job:
        """Change bookkeeping fields without a state change (progress, schedules, ids)."""
        async with self._db.transaction() as conn:
            return await transition_in(conn, job_id, None, expected=None, now=now, **fields)

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[Job]:
        async with self._db.read() as conn:
            cursor = await conn.execute(sql, params)
            rows = await cursor.fetchall()
        return [row_to_job(row) for row in rows]

    async def due_for_poll(self, now: float, limit: int) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE state IN ('submitted', 'downloading') AND next_poll_at <= ?"
            " ORDER BY next_poll_at LIMIT ?",
            (now, limit),
        )

    async def next_poll_at(self) -> float | None:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT MIN(next_poll_at) FROM jobs WHERE state IN ('submitted', 'downloading')"
            )
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def due_for_delivery(self, now: float, limit: int) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE state = 'archived' AND next_delivery_at <= ?"
            " ORDER BY next_delivery_at LIMIT ?",
            (now, limit),
        )

    async def next_delivery_at(self) -> float | None:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT MIN(next_delivery_at) FROM jobs WHERE state = 'archived'"
            )
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def in_states(self, states: Iterable[JobState]) -> list[Job]:
        names = [state.value for state in states]
        marks = ", ".join("?" for _ in names)
        return await self._select(
            f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", tuple(names)
        )

    async def recent_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        return await self._select(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )

    async def search(
        self,
        guild_id: int,
        *,
        state: JobState | None = None,
        user_id: int | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[Job]:
        clauses, params = ["guild_id = ?"], [guild_id]
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)  # type: ignore[arg-type]
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since)  # type: ignore[arg-type]
        return await self._select(
            f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )

    async def events(self, job_id: int) -> list[JobEvent]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
            )
            rows = await cursor.fetchall()
        return [JobEvent.model_validate(dict(row)) for row in rows]

    async def count_by_state(self) -> dict[JobState, int]:
        async with self._db.read() as conn:
            cursor = await conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            rows = await cursor.fetchall()
        return {JobState(row[0]): int(row[1]) for row in rows}
