"""Jobs and their append-only event history.

Every change of a job's state goes through `transition_sync`, which enforces the
`TRANSITIONS` table and records a `job_events` row, in one guarded
`UPDATE … RETURNING` (the row is read once, by the statement that changes it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Unpack

from storage.database import POSTGRESQL, AsyncConn, Database, DbRow, SyncConn, run_in
from storage.media import expire_inputs_sync
from storage.models import (
    DELIVERY_STATES,
    INTAKE_STATES,
    TRACKED_STATES,
    UNBILLED_STATES,
    Job,
    JobChanges,
    JobEvent,
    JobSource,
    JobState,
    NewJob,
    sources_of,
)

# Columns a transition may set besides `state`, from the typed `JobChanges`.
_UPDATABLE = JobChanges.__optional_keys__


class StaleTransition(RuntimeError):
    """The job was not in an expected state: someone else moved it first."""

    def __init__(self, job_id: int, actual: JobState | None, expected: Iterable[JobState]):
        names = ", ".join(sorted(state.value for state in expected))
        super().__init__(f"job {job_id} is {actual}, expected one of: {names}")
        self.job_id = job_id
        self.actual = actual


class IllegalTransition(ValueError):
    """A change of state that `TRANSITIONS` does not allow: a programming error."""

    def __init__(self, job_id: int, sources: Iterable[JobState], to_state: JobState):
        names = ", ".join(sorted(state.value for state in sources))
        super().__init__(f"job {job_id}: no transition from {names} to {to_state.value}")
        self.job_id = job_id
        self.to_state = to_state


class TaskTaken(Exception):
    """The provider task already belongs to another job: one task, one job."""

    def __init__(self, task_id: str, owner_job_id: int) -> None:
        super().__init__(f"task {task_id} belongs to job {owner_job_id}")
        self.task_id = task_id
        self.owner_job_id = owner_job_id


# A job row's columns, named in full: SQLAlchemy then knows the result's layout in advance
# (`columns=`) instead of rebuilding it from each of the tracker's many results.
JOB_COLUMNS = tuple(Job.model_fields)
JOB_ROW = ", ".join(JOB_COLUMNS)


def row_to_job(row: DbRow) -> Job:
    data = row._asdict()
    data["source"] = JobSource.model_validate_json(data["source"])
    data["keep_audio"] = bool(data["keep_audio"])
    return Job.model_validate(data)


def _in(states: Iterable[JobState]) -> tuple[str, list[str]]:
    """`state IN (?, …)` and its parameters."""
    values = sorted(state.value for state in states)
    return f"state IN ({', '.join('?' for _ in values)})", values


def _encode(name: str, value: Any) -> Any:
    if name == "source" and isinstance(value, JobSource):
        return value.model_dump_json()
    return value


async def fetch_job(conn: AsyncConn, job_id: int) -> Job | None:
    cursor = await conn.execute(
        f"SELECT {JOB_ROW} FROM jobs WHERE id = ?", (job_id,), columns=JOB_COLUMNS
    )
    row = await cursor.fetchone()
    return row_to_job(row) if row else None


def transition_sync(
    raw: SyncConn,
    job_id: int,
    to_state: JobState | None,
    *,
    expected: Iterable[JobState] | None,
    now: float,
    detail: str | None,
    changes: JobChanges,
) -> Job:
    """Move a job to `to_state` and set `changes`, inside the caller's transaction.

    `to_state=None` keeps the state and only sets the changes (`expected` then guards
    the current state, if given). Moving to the state the job is already in is allowed
    (and records no event); any other move must be in `TRANSITIONS`. `expected` narrows
    the states the job may be in, as an optimistic check against concurrent writers.
    """
    unknown = changes.keys() - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    fields: dict[str, Any] = dict(changes)
    guard = None if expected is None else frozenset(expected)
    assignments: list[str] = ["updated_at = ?"]
    values: list[Any] = [now]
    if to_state is not None:
        legal = sources_of(to_state) | {to_state}
        if guard is None:
            guard = legal
        elif not guard <= legal:
            raise IllegalTransition(job_id, guard - legal, to_state)
        if to_state.is_terminal and "ended_at" not in fields:
            fields["ended_at"] = now
        assignments.append("state = ?")
        values.append(to_state.value)
        moves = guard - {to_state}
        if moves:
            # Recorded first, under the same guard: if the UPDATE below matches nothing,
            # this matched nothing either (same transaction), and the caller rolls back.
            # On PostgreSQL the row is locked as it is read: under READ COMMITTED a plain
            # read sees the state last committed while the UPDATE waits for a concurrent
            # mover and then applies to the row it left, so the history would name a state
            # the job had already left. Locking, the read waits too and sees that row.
            lock = " FOR UPDATE" if raw.dialect == POSTGRESQL else ""
            clause, from_states = _in(moves)
            raw.execute(
                "INSERT INTO job_events (job_id, at, from_state, to_state, detail)"
                f" SELECT id, CAST(? AS DOUBLE PRECISION), state, CAST(? AS TEXT), CAST(? AS TEXT)"
                f" FROM jobs WHERE id = ? AND {clause}{lock}",
                (now, to_state.value, detail, job_id, *from_states),
            )
    assignments += [f"{name} = ?" for name in fields]
    values += [_encode(name, value) for name, value in fields.items()]
    where = "id = ?"
    params: list[Any] = [job_id]
    if guard is not None:
        clause, states = _in(guard)
        where += f" AND {clause}"
        params += states
    rows = raw.execute(
        f"UPDATE jobs SET {', '.join(assignments)} WHERE {where} RETURNING {JOB_ROW}",
        (*values, *params),
        columns=JOB_COLUMNS,
    ).fetchall()
    if rows:
        return row_to_job(rows[0])
    found = raw.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    actual = JobState(found[0]) if found else None
    if actual is not None and to_state is not None and expected is None:
        raise IllegalTransition(job_id, {actual}, to_state)  # the guard was the table's
    raise StaleTransition(job_id, actual, guard or ())


async def transition_in(
    conn: AsyncConn,
    job_id: int,
    to_state: JobState | None,
    *,
    expected: Iterable[JobState] | None,
    now: float,
    detail: str | None = None,
    **changes: Unpack[JobChanges],
) -> Job:
    """`transition_sync` inside the caller's `Database.transaction()`, one round trip."""
    return await run_in(
        conn,
        lambda raw: transition_sync(
            raw, job_id, to_state, expected=expected, now=now, detail=detail, changes=changes
        ),
    )


def adopt_sync(
    raw: SyncConn,
    job_id: int,
    task_id: str,
    *,
    expected: Iterable[JobState],
    now: float,
    detail: str,
    changes: JobChanges,
) -> Job:
    """Attach a provider task found later to a job and move it to SUBMITTED, inside the
    caller's transaction.

    `expected` is the guard that makes adoption happen once: whichever comes first (the
    create's own answer, a callback, a moderator) moves the job, and the others find it
    moved (`StaleTransition`). `TaskTaken` when another job holds the task (the column is
    also UNIQUE, so this is the readable refusal, not the only line of defence).
    """
    owner = raw.execute(
        "SELECT id FROM jobs WHERE provider_task_id = ? AND id != ?", (task_id, job_id)
    ).fetchone()
    if owner is not None:
        raise TaskTaken(task_id, int(owner[0]))
    return transition_sync(
        raw, job_id, JobState.SUBMITTED, expected=expected, now=now, detail=detail,
        changes={**changes, "provider_task_id": task_id},
    )


@dataclass(frozen=True)
class DueWork:
    """What the tracker should start now, and when it should look again."""

    polls: list[Job]
    deliveries: list[Job]
    next_due: float | None  # earliest next_poll_at / next_delivery_at after the leases


# Due-time column, its partial index (without INDEXED BY, SQLite prefers the state index
# and sorts every tracked job on each pass), and the states it schedules.
_DUE = (
    ("next_poll_at", "jobs_due_poll", TRACKED_STATES),
    ("next_delivery_at", "jobs_due_delivery", DELIVERY_STATES),
)


class Hint(Enum):
    """What a callback's hint did to a job (`JobRepository.make_due`)."""

    DUE = "due"  # due now: whichever tracker leases it next polls it
    HELD = "held"  # another process is polling it right now: tell that process
    NOT_WAITING = "not waiting"  # unknown, or not waiting for the provider any more


# A job whose due time still equals its lease's end is held by `leased_by` until then;
# once the step reschedules it (or the lease ends) nobody holds it.
_HELD_BY_OTHER = (
    "leased_by IS NOT NULL AND leased_by <> ? AND lease_until > ?"
    " AND (next_poll_at = lease_until OR next_delivery_at = lease_until)"
)


def _lease_sync(
    raw: SyncConn, now: float, until: float, limit: int, skip: Iterable[int], owner: str
) -> DueWork:
    busy = sorted(skip)
    postgres = raw.dialect == POSTGRESQL
    leased: list[list[Job]] = []
    for column, index, states in _DUE:
        clause, params = _in(states)
        busy_param: object
        if postgres:
            # Rows another process is leasing right now are skipped, not waited for.
            source, lock, busy_param = "jobs", " FOR UPDATE SKIP LOCKED", busy
            not_busy = "id <> ALL(?)"
        else:
            source, lock, busy_param = f"jobs INDEXED BY {index}", "", json.dumps(busy)
            not_busy = "id NOT IN (SELECT value FROM json_each(?))"
        rows = raw.execute(
            f"UPDATE jobs SET {column} = ?, lease_until = ?, leased_by = ? WHERE id IN ("
            f" SELECT id FROM {source} WHERE {column} <= ? AND {clause} AND {not_busy}"
            f" ORDER BY {column} LIMIT ?{lock}) RETURNING {JOB_ROW}",
            (until, until, owner, now, *params, busy_param, limit),
            columns=JOB_COLUMNS,
        ).fetchall()
        leased.append(sorted((row_to_job(row) for row in rows), key=lambda job: job.id))
    # Each side walks its partial index in due order and stops at the first job in state.
    firsts: list[str] = []
    values: list[str] = []
    for column, index, states in _DUE:
        clause, params = _in(states)
        values += params
        source = "jobs" if postgres else f"jobs INDEXED BY {index}"
        firsts.append(
            f"SELECT * FROM (SELECT {column} AS due FROM {source}"
            f" WHERE {column} IS NOT NULL AND {clause} ORDER BY {column} LIMIT 1) AS {column}"
        )
    row = raw.execute(
        f"SELECT MIN(due) AS next_due FROM ({' UNION ALL '.join(firsts)}) AS firsts",
        values,
        columns=("next_due",),
    ).fetchone()
    next_due = float(row[0]) if row and row[0] is not None else None
    return DueWork(polls=leased[0], deliveries=leased[1], next_due=next_due)


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


class JobRepository:
    """The jobs table, as seen by one process: `owner` names it in the leases it takes."""

    def __init__(self, db: Database, owner: str = "bot") -> None:
        self._db = db
        self.owner = owner

    async def create(self, new: NewJob, *, now: float) -> Job:
        return await self._db.run(lambda raw: create_sync(raw, new, now))

    async def get(self, job_id: int) -> Job | None:
        rows = await self._db.fetch(
            f"SELECT {JOB_ROW} FROM jobs WHERE id = ?", (job_id,), columns=JOB_COLUMNS
        )
        return row_to_job(rows[0]) if rows else None

    async def transition(
        self,
        job_id: int,
        to_state: JobState,
        *,
        expected: Iterable[JobState] | None,
        now: float,
        detail: str | None = None,
        **changes: Unpack[JobChanges],
    ) -> Job:
        """Move a job along `TRANSITIONS` (and set `changes`) in one transaction.

        Raises `IllegalTransition` for a move the table does not allow and
        `StaleTransition` when the job is not in `expected` (someone moved it first).
        """
        return await self._db.run(
            lambda raw: transition_sync(
                raw, job_id, to_state, expected=expected, now=now, detail=detail,
                changes=changes,
            )
        )

    async def become_uncertain(
        self,
        job_id: int,
        *,
        expected: Iterable[JobState],
        now: float,
        detail: str | None,
        inputs_expire_at: float,
        **changes: Unpack[JobChanges],
    ) -> Job:
        """Move a job whose create call's outcome is unknown to SUBMISSION_UNKNOWN; its
        inputs expire at `inputs_expire_at`, in the same transaction.

        The provider fetches the inputs before it can answer the create call, so once that
        answer is lost they are no longer needed beyond the usual grace period.
        """

        def work(raw: SyncConn) -> Job:
            job = transition_sync(
                raw, job_id, JobState.SUBMISSION_UNKNOWN, expected=expected, now=now,
                detail=detail, changes=changes,
            )
            expire_inputs_sync(raw, job_id, inputs_expire_at)
            return job

        return await self._db.run(work)

    async def update(
        self,
        job_id: int,
        *,
        now: float,
        expected: Iterable[JobState] | None = None,
        **changes: Unpack[JobChanges],
    ) -> Job:
        """Change bookkeeping fields without a state change (progress, schedules, ids).

        With `expected`, only while the job is in one of those states (else
        `StaleTransition`).
        """
        return await self._db.run(
            lambda raw: transition_sync(
                raw, job_id, None, expected=expected, now=now, detail=None, changes=changes
            )
        )

    async def adopt(
        self,
        job_id: int,
        task_id: str,
        *,
        expected: Iterable[JobState],
        now: float,
        detail: str,
        **changes: Unpack[JobChanges],
    ) -> Job:
        """`adopt_sync` in its own transaction."""
        guard = frozenset(expected)
        return await self._db.run(
            lambda raw: adopt_sync(
                raw, job_id, task_id, expected=guard, now=now, detail=detail, changes=changes
            )
        )

    async def uncertain_since_before(self, cutoff: float) -> list[Job]:
        """Jobs in SUBMISSION_UNKNOWN that entered it (last) at or before `cutoff`."""
        state = JobState.SUBMISSION_UNKNOWN.value
        return await self._select(
            f"SELECT {JOB_ROW} FROM jobs WHERE state = ? AND (SELECT MAX(at) FROM job_events"
            " WHERE job_id = jobs.id AND to_state = ?) <= ? ORDER BY id",
            (state, state, cutoff),
        )

    async def lease_due(
        self, now: float, *, until: float, limit: int, skip: Iterable[int] = ()
    ) -> DueWork:
        """Take the jobs due for a poll and for a delivery (at most `limit` of each, most
        overdue first, none in `skip`) by pushing their due time to `until`, so a crash
        mid-action retries later instead of never; all in one transaction."""
        skipped = list(skip)
        return await self._db.run(
            lambda raw: _lease_sync(raw, now, until, limit, skipped, self.owner)
        )

    async def renew_lease(self, job_id: int, *, until: float) -> bool:
        """Extend this process's lease on a job to `until`, with the due time it holds;
        False when the lease is no longer ours (the step rescheduled the job, or another
        process took it over after it ended)."""
        rows = await self._db.fetch(
            "UPDATE jobs SET"
            " next_poll_at = CASE WHEN next_poll_at = lease_until THEN ? ELSE next_poll_at END,"
            " next_delivery_at = CASE WHEN next_delivery_at = lease_until THEN ?"
            " ELSE next_delivery_at END, lease_until = ?"
            " WHERE id = ? AND leased_by = ?"
            " AND (next_poll_at = lease_until OR next_delivery_at = lease_until) RETURNING id",
            (until, until, until, job_id, self.owner),
        )
        return bool(rows)

    async def hold_intakes(self, *, now: float, until: float) -> list[Job]:
        """Renew this process's leases on its jobs before the provider (`INTAKE_STATES`) to
        `until`, and take over those whose holder let the lease end (it died): they are
        returned, now held by this process. One round trip."""
        clause, states = _in(INTAKE_STATES)

        def work(raw: SyncConn) -> list[Job]:
            raw.execute(
                f"UPDATE jobs SET lease_until = ? WHERE leased_by = ? AND {clause}",
                (until, self.owner, *states),
            )
            lock = " FOR UPDATE SKIP LOCKED" if raw.dialect == POSTGRESQL else ""
            rows = raw.execute(
                "UPDATE jobs SET leased_by = ?, lease_until = ? WHERE id IN (SELECT id FROM jobs"
                f" WHERE {clause} AND leased_by <> ? AND lease_until < ?{lock})"
                f" RETURNING {JOB_ROW}",
                (self.owner, until, *states, self.owner, now),
                columns=JOB_COLUMNS,
            ).fetchall()
            return sorted((row_to_job(row) for row in rows), key=lambda job: job.id)

        return await self._db.run(work)

    async def make_due(self, job_id: int, *, now: float) -> Hint:
        """Make a job waiting for the provider due for a poll now, unless another process
        holds its lease (that process must be told instead, or it could poll it twice)."""

        def work(raw: SyncConn) -> Hint:
            waiting = JobState.SUBMITTED.value
            changed = raw.execute(
                "UPDATE jobs SET next_poll_at = 0, updated_at = ? WHERE id = ? AND state = ?"
                f" AND NOT COALESCE({_HELD_BY_OTHER}, FALSE) RETURNING id",
                (now, job_id, waiting, self.owner, now),
            ).fetchall()
            if changed:
                return Hint.DUE
            held = raw.execute(
                f"SELECT id FROM jobs WHERE id = ? AND state = ? AND {_HELD_BY_OTHER}",
                (job_id, waiting, self.owner, now),
            ).fetchall()
            return Hint.HELD if held else Hint.NOT_WAITING

        return await self._db.run(work)

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[Job]:
        return [
            row_to_job(row) for row in await self._db.fetch(sql, params, columns=JOB_COLUMNS)
        ]

    async def in_states(
        self, states: Iterable[JobState], *, owned_only: bool = False
    ) -> list[Job]:
        """Jobs in `states`; with `owned_only`, only those this process submitted or
        leased last (what it left behind when it stopped)."""
        clause, params = _in(states)
        owned = " AND leased_by = ?" if owned_only else ""
        return await self._select(
            f"SELECT {JOB_ROW} FROM jobs WHERE {clause}{owned} ORDER BY id",
            (*params, *([self.owner] if owned_only else [])),
        )

    async def recent_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        return await self._select(
            f"SELECT {JOB_ROW} FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY id DESC LIMIT ?",
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
            f"SELECT {JOB_ROW} FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )

    async def events(self, job_id: int) -> list[JobEvent]:
        rows = await self._db.fetch(
            "SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [JobEvent.model_validate(row._asdict()) for row in rows]

    async def unbilled_credits(self) -> float:
        """Credits of jobs reserved for, or running at, the provider and not yet billed."""
        names = sorted(state.value for state in UNBILLED_STATES)
        rows = await self._db.fetch(
            f"SELECT COALESCE(SUM(credits), 0) FROM jobs WHERE state IN "
            f"({', '.join('?' for _ in names)})",
            names,
        )
        return float(rows[0][0])

    async def count_by_state(self) -> dict[JobState, int]:
        rows = await self._db.fetch("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return {JobState(row[0]): int(row[1]) for row in rows}
