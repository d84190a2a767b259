"""Every change of a job's state: `transition_sync` enforces the `TRANSITIONS` table and
records a `job_events` row, in one guarded `UPDATE … RETURNING` (the row is read once, by the
statement that changes it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from storage.database import POSTGRESQL, AsyncConn, SyncConn, run_in
from storage.job_rows import JOB_COLUMNS, JOB_ROW, encode_column, row_to_job, states_in
from storage.models import Job, JobChanges, JobState, sources_of

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
            clause, from_states = states_in(moves)
            raw.execute(
                "INSERT INTO job_events (job_id, at, from_state, to_state, detail)"
                f" SELECT id, CAST(? AS DOUBLE PRECISION), state, CAST(? AS TEXT), CAST(? AS TEXT)"
                f" FROM jobs WHERE id = ? AND {clause}{lock}",
                (now, to_state.value, detail, job_id, *from_states),
            )
    assignments += [f"{name} = ?" for name in fields]
    values += [encode_column(name, value) for name, value in fields.items()]
    where = "id = ?"
    params: list[Any] = [job_id]
    if guard is not None:
        clause, states = states_in(guard)
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
        raw,
        job_id,
        JobState.SUBMITTED,
        expected=expected,
        now=now,
        detail=detail,
        changes={**changes, "provider_task_id": task_id},
    )
