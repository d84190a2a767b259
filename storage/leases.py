"""Who works on a job now: leases on due jobs, their renewal, and taking over a dead holder's.

A lease pushes a job's due time to the lease's end (`lease_until`, `leased_by`), so a process
that dies mid-step leaves a job that simply falls due again when the lease ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from storage.database import POSTGRESQL, SyncConn
from storage.job_rows import JOB_COLUMNS, JOB_ROW, row_to_job, states_in
from storage.models import DELIVERY_STATES, INTAKE_STATES, TRACKED_STATES, Job, JobState


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


def lease_due_sync(
    raw: SyncConn, now: float, until: float, limit: int, skip: Iterable[int], owner: str
) -> DueWork:
    busy = sorted(skip)
    postgres = raw.dialect == POSTGRESQL
    leased: list[list[Job]] = []
    for column, index, states in _DUE:
        clause, params = states_in(states)
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
        clause, params = states_in(states)
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


def renew_lease_sync(raw: SyncConn, job_id: int, until: float, owner: str) -> bool:
    rows = raw.execute(
        "UPDATE jobs SET"
        " next_poll_at = CASE WHEN next_poll_at = lease_until THEN ? ELSE next_poll_at END,"
        " next_delivery_at = CASE WHEN next_delivery_at = lease_until THEN ?"
        " ELSE next_delivery_at END, lease_until = ?"
        " WHERE id = ? AND leased_by = ?"
        " AND (next_poll_at = lease_until OR next_delivery_at = lease_until) RETURNING id",
        (until, until, until, job_id, owner),
    ).fetchall()
    return bool(rows)


def hold_intakes_sync(raw: SyncConn, now: float, until: float, owner: str) -> list[Job]:
    clause, states = states_in(INTAKE_STATES)
    raw.execute(
        f"UPDATE jobs SET lease_until = ? WHERE leased_by = ? AND {clause}",
        (until, owner, *states),
    )
    lock = " FOR UPDATE SKIP LOCKED" if raw.dialect == POSTGRESQL else ""
    rows = raw.execute(
        "UPDATE jobs SET leased_by = ?, lease_until = ? WHERE id IN (SELECT id FROM jobs"
        f" WHERE {clause} AND leased_by <> ? AND lease_until < ?{lock})"
        f" RETURNING {JOB_ROW}",
        (owner, until, *states, owner, now),
        columns=JOB_COLUMNS,
    ).fetchall()
    return sorted((row_to_job(row) for row in rows), key=lambda job: job.id)


def make_due_sync(raw: SyncConn, job_id: int, now: float, owner: str) -> Hint:
    waiting = JobState.SUBMITTED.value
    changed = raw.execute(
        "UPDATE jobs SET next_poll_at = 0, updated_at = ? WHERE id = ? AND state = ?"
        f" AND NOT COALESCE({_HELD_BY_OTHER}, FALSE) RETURNING id",
        (now, job_id, waiting, owner, now),
    ).fetchall()
    if changed:
        return Hint.DUE
    held = raw.execute(
        f"SELECT id FROM jobs WHERE id = ? AND state = ? AND {_HELD_BY_OTHER}",
        (job_id, waiting, owner, now),
    ).fetchall()
    return Hint.HELD if held else Hint.NOT_WAITING
