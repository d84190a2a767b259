"""The jobs table and its append-only event history, as one process sees them.

State changes go through `storage.transitions`, leases through `storage.leases`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from storage.database import Database, SyncConn
from storage.job_rows import JOB_COLUMNS, JOB_ROW, create_sync, row_to_job, states_in
from storage.leases import (
    DueWork,
    Hint,
    hold_intakes_sync,
    lease_due_sync,
    make_due_sync,
    renew_lease_sync,
)
from storage.media import expire_inputs_sync
from storage.models import UNBILLED_STATES, Job, JobChanges, JobEvent, JobState, NewJob
from storage.transitions import adopt_sync, transition_sync


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
                raw,
                job_id,
                to_state,
                expected=expected,
                now=now,
                detail=detail,
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
                raw,
                job_id,
                JobState.SUBMISSION_UNKNOWN,
                expected=expected,
                now=now,
                detail=detail,
                changes=changes,
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
        `StaleTransition`). One guarded UPDATE (the state is not changed, so no event row
        goes with it): no transaction needs to wrap it.
        """
        return await self._db.run_each(
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
        mid-action retries later instead of never; in one round trip. Each lease is one
        statement that holds on its own (the polls', the deliveries'), so no transaction
        wraps them."""
        skipped = list(skip)
        return await self._db.run_each(
            lambda raw: lease_due_sync(raw, now, until, limit, skipped, self.owner)
        )

    async def renew_lease(self, job_id: int, *, until: float) -> bool:
        """Extend this process's lease on a job to `until`, with the due time it holds;
        False when the lease is no longer ours (the step rescheduled the job, or another
        process took it over after it ended)."""
        return await self._db.run_each(lambda raw: renew_lease_sync(raw, job_id, until, self.owner))

    async def hold_intakes(self, *, now: float, until: float) -> list[Job]:
        """Renew this process's leases on its jobs before the provider (`INTAKE_STATES`) to
        `until`, and take over those whose holder let the lease end (it died): they are
        returned, now held by this process. One round trip."""
        return await self._db.run(lambda raw: hold_intakes_sync(raw, now, until, self.owner))

    async def make_due(self, job_id: int, *, now: float) -> Hint:
        """Make a job waiting for the provider due for a poll now, unless another process
        holds its lease (that process must be told instead, or it could poll it twice)."""
        return await self._db.run(lambda raw: make_due_sync(raw, job_id, now, self.owner))

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[Job]:
        return [row_to_job(row) for row in await self._db.fetch(sql, params, columns=JOB_COLUMNS)]

    async def in_states(self, states: Iterable[JobState], *, owned_only: bool = False) -> list[Job]:
        """Jobs in `states`; with `owned_only`, only those this process submitted or
        leased last (what it left behind when it stopped)."""
        clause, params = states_in(states)
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
