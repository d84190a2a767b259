"""Moderator changes: limit overrides, blocks, channel rules, stuck jobs, usage reads.

Every mutation writes its audit row in the same transaction as the change, so the
audit log can never claim a change that was rolled back, nor miss one that was kept.
"""

from __future__ import annotations

from typing import Any, Literal

from storage.database import AsyncConn, Database, DbRow, run_in
from storage.guilds import read_guild_settings, update_settings_in, write_audit
from storage.job_rows import fetch_job, row_to_job
from storage.media import EXPIRE_INPUTS_SQL
from storage.models import (
    TASK_NOT_FOUND_CODE,
    AuditEntry,
    BlockedUser,
    ChannelRule,
    GuildSettings,
    Job,
    JobChanges,
    JobFailure,
    JobState,
    LimitOverride,
    UsageRow,
)
from storage.quota import refund_in
from storage.transitions import adopt_sync, transition_in

LimitTable = Literal["user_limits", "role_limits"]
_SUBJECT = {"user_limits": ("user_id", "user"), "role_limits": ("role_id", "role")}


class NothingToChange(LookupError):
    """The row a moderator asked to remove does not exist; nothing was written."""


class UnknownJob(LookupError):
    """No job with this id belongs to this guild (ids of other guilds are not revealed)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobAlreadyFinished(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is already {job.state.value}")
        self.job = job


# A provider task exists (or the create call that may make one is in flight) and runs its
# course: the provider has no cancel endpoint (EVOLINK_API.md §3) and bills it when it
# completes, so failing the job would refund a task that is still billed. The tracker
# delivers it if it completes and refunds it if the provider fails it. Before submission,
# and once a submission is known to be uncertain, a moderator may fail a job (refunded).
PROVIDER_TASK_STATES = frozenset(
    {JobState.SUBMITTING, JobState.SUBMITTED, JobState.DOWNLOADING, JobState.ARCHIVED}
)


class ProviderTaskRunning(Exception):
    """`fail_job` on a job in `PROVIDER_TASK_STATES`; nothing was written."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.state.value} at the provider")
        self.job = job


# Settled and not given back = spent; reserved and not closed = still in flight.
_LEDGER_STATE = """
WITH ledger AS (
    SELECT job_id,
           MAX(CASE WHEN kind = 'reserve' THEN 1 ELSE 0 END) AS reserved,
           MAX(CASE WHEN kind = 'settle' THEN 1 ELSE 0 END) AS settled,
           MAX(CASE WHEN kind IN ('refund', 'release') THEN 1 ELSE 0 END) AS returned
    FROM quota_ledger WHERE guild_id = ? AND job_id IS NOT NULL GROUP BY job_id
)
"""
_SPENT = "ledger.settled = 1 AND ledger.returned = 0"
_USAGE = _LEDGER_STATE + f"""
SELECT jobs.user_id AS user_id,
       COUNT(*) AS jobs,
       COALESCE(SUM(CASE WHEN {_SPENT} THEN 1 END), 0) AS billed_jobs,
       COALESCE(SUM(CASE WHEN {_SPENT} THEN jobs.billed_seconds END), 0) AS billed_seconds,
       COALESCE(SUM(CASE WHEN {_SPENT} THEN jobs.credits END), 0.0) AS credits,
       COALESCE(SUM(CASE WHEN ledger.reserved = 1 AND ledger.settled = 0
                         AND ledger.returned = 0 THEN jobs.billed_seconds END), 0)
           AS pending_seconds
FROM jobs LEFT JOIN ledger ON ledger.job_id = jobs.id
WHERE jobs.guild_id = ? AND jobs.created_at >= ? AND jobs.created_at < ?
GROUP BY jobs.user_id
ORDER BY billed_seconds DESC, credits DESC, jobs DESC, user_id
"""
# The jobs of a period whose billed seconds were spent (the usage CSV's `spent_seconds`).
_SPENT_JOBS = _LEDGER_STATE + f"""
SELECT jobs.id FROM jobs JOIN ledger ON ledger.job_id = jobs.id
WHERE jobs.guild_id = ? AND jobs.created_at >= ? AND jobs.created_at < ? AND {_SPENT}
"""


def _override(row: DbRow | None) -> LimitOverride | None:
    return LimitOverride.model_validate(row._asdict()) if row else None


async def _read_override(
    conn: AsyncConn, table: LimitTable, guild_id: int, subject_id: int
) -> LimitOverride | None:
    column = _SUBJECT[table][0]
    cursor = await conn.execute(
        f"SELECT {column} AS subject_id, daily_seconds, monthly_seconds FROM {table}"
        f" WHERE guild_id = ? AND {column} = ?",
        (guild_id, subject_id),
    )
    return _override(await cursor.fetchone())


def _limits(override: LimitOverride | None) -> dict[str, int | None] | None:
    if override is None:
        return None
    return {"daily_seconds": override.daily_seconds, "monthly_seconds": override.monthly_seconds}


class AdminRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def update_guild(
        self,
        guild_id: int,
        changes: dict[str, Any],
        *,
        actor_id: int,
        action: str,
        now: float,
        target: str | None = None,
    ) -> tuple[GuildSettings, AuditEntry]:
        """Change guild settings; the audit row records each changed value before and after."""
        async with self._db.transaction() as conn:
            before = await read_guild_settings(conn, guild_id)
            after = await update_settings_in(conn, guild_id, now=now, changes=changes)
            detail = {
                "before": {name: getattr(before, name) for name in changes},
                "after": {name: getattr(after, name) for name in changes},
            }
            entry = await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action=action, target=target,
                detail=detail, now=now,
            )
        return after, entry

    async def set_limit(
        self,
        table: LimitTable,
        guild_id: int,
        subject_id: int,
        *,
        daily_seconds: int | None,
        monthly_seconds: int | None,
        actor_id: int,
        now: float,
    ) -> tuple[LimitOverride, AuditEntry]:
        """Upsert a user or role override; a value left as None keeps what was stored."""
        column, kind = _SUBJECT[table]
        async with self._db.transaction() as conn:
            before = await _read_override(conn, table, guild_id, subject_id)
            cursor = await conn.execute(
                f"INSERT INTO {table} (guild_id, {column}, daily_seconds, monthly_seconds,"
                " updated_at) VALUES (?, ?, ?, ?, ?)"
                f" ON CONFLICT (guild_id, {column}) DO UPDATE SET"
                f" daily_seconds = COALESCE(excluded.daily_seconds, {table}.daily_seconds),"
                " monthly_seconds ="
                f" COALESCE(excluded.monthly_seconds, {table}.monthly_seconds),"
                " updated_at = excluded.updated_at"
                f" RETURNING {column} AS subject_id, daily_seconds, monthly_seconds",
                (guild_id, subject_id, daily_seconds, monthly_seconds, now),
            )
            after = _override(await cursor.fetchone())
            assert after is not None
            entry = await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action=f"{kind}.limit",
                target=f"{kind}:{subject_id}",
                detail={"before": _limits(before), "after": _limits(after)}, now=now,
            )
        return after, entry

    async def clear_limit(
        self, table: LimitTable, guild_id: int, subject_id: int, *, actor_id: int, now: float
    ) -> AuditEntry:
        column, kind = _SUBJECT[table]
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"DELETE FROM {table} WHERE guild_id = ? AND {column} = ?"
                f" RETURNING {column} AS subject_id, daily_seconds, monthly_seconds",
                (guild_id, subject_id),
            )
            removed = _override(await cursor.fetchone())
            if removed is None:
                raise NothingToChange(f"no {kind} limit for {subject_id}")
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action=f"{kind}.limit.clear",
                target=f"{kind}:{subject_id}", detail={"before": _limits(removed)}, now=now,
            )

    async def role_limits(self, guild_id: int) -> list[LimitOverride]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT role_id AS subject_id, daily_seconds, monthly_seconds FROM role_limits"
                " WHERE guild_id = ? ORDER BY role_id",
                (guild_id,),
            )
            return [LimitOverride.model_validate(row._asdict()) for row in await cursor.fetchall()]

    async def block(
        self, guild_id: int, user_id: int, *, reason: str | None, actor_id: int, now: float
    ) -> tuple[BlockedUser, AuditEntry]:
        """Block a member (or change the reason of an existing block)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO blocked_users (guild_id, user_id, reason, blocked_by, at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET"
                " reason = excluded.reason, blocked_by = excluded.blocked_by, at = excluded.at"
                " RETURNING *",
                (guild_id, user_id, reason, actor_id, now),
            )
            row = await cursor.fetchone()
            assert row is not None
            entry = await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="user.block",
                target=f"user:{user_id}", detail={"reason": reason}, now=now,
            )
        return BlockedUser.model_validate(row._asdict()), entry

    async def unblock(
        self, guild_id: int, user_id: int, *, actor_id: int, now: float
    ) -> AuditEntry:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM blocked_users WHERE guild_id = ? AND user_id = ? RETURNING reason",
                (guild_id, user_id),
            )
            row = await cursor.fetchone()
            if row is None:
                raise NothingToChange(f"user {user_id} is not blocked")
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="user.unblock",
                target=f"user:{user_id}", detail={"was_blocked_for": row[0]}, now=now,
            )

    async def set_channel_rule(
        self, guild_id: int, channel_id: int, rule: ChannelRule, *, actor_id: int, now: float
    ) -> AuditEntry:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO channel_rules (guild_id, channel_id, rule, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET"
                " rule = excluded.rule, updated_at = excluded.updated_at",
                (guild_id, channel_id, rule.value, now),
            )
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action=f"channels.{rule.value}",
                target=f"channel:{channel_id}", detail=None, now=now,
            )

    async def remove_channel_rule(
        self, guild_id: int, channel_id: int, *, actor_id: int, now: float
    ) -> AuditEntry:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM channel_rules WHERE guild_id = ? AND channel_id = ? RETURNING rule",
                (guild_id, channel_id),
            )
            row = await cursor.fetchone()
            if row is None:
                raise NothingToChange(f"no rule for channel {channel_id}")
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="channels.remove",
                target=f"channel:{channel_id}", detail={"was": row[0]}, now=now,
            )

    async def record(
        self, guild_id: int, *, actor_id: int, action: str, target: str | None,
        detail: dict[str, Any] | None, now: float,
    ) -> AuditEntry:
        """Audit an action that changes no row (e.g. re-posting a result)."""
        async with self._db.transaction() as conn:
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action=action, target=target,
                detail=detail, now=now,
            )

    async def fail_job(
        self, guild_id: int, job_id: int, *, reason: str, actor_id: int, now: float,
        inputs_expire_at: float, error_message: str,
    ) -> JobFailure:
        """Stop a job before the provider holds a task for it: FAILED, reservation refunded,
        inputs unpublished soon, audited. Refused (`ProviderTaskRunning`) once it does.
        `error_message` is what the member reads (the engine stores its texts translatable).

        The engine may be holding the job right now; its next transition then finds the
        job FAILED and is skipped as stale, so the job is never resumed or refunded twice.
        """
        async with self._db.transaction() as conn:
            job = await fetch_job(conn, job_id)
            if job is None or job.guild_id != guild_id:
                raise UnknownJob(job_id)
            if job.state.is_terminal:
                raise JobAlreadyFinished(job)
            # Unless the provider has long said it does not know the task: a moderator who
            # checked its dashboard may then stop the job (refunded).
            if job.state in PROVIDER_TASK_STATES and job.error_code != TASK_NOT_FOUND_CODE:
                raise ProviderTaskRunning(job)
            job = await transition_in(
                conn, job_id, JobState.FAILED, expected={job.state}, now=now,
                detail="moderator_failed", error_code="moderator_failed",
                error_message=error_message, next_poll_at=None,
                next_delivery_at=None,
            )
            refunded = await refund_in(conn, job, now=now, actor_id=actor_id, note=reason)
            await conn.execute(EXPIRE_INPUTS_SQL, (inputs_expire_at, job_id, inputs_expire_at))
            entry = await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="jobs.fail",
                target=f"job:{job_id}",
                detail={"reason": reason, "refunded_seconds": refunded}, now=now,
            )
        return JobFailure(job=job, refunded_seconds=refunded, audit=entry)

    async def attach_task(
        self,
        guild_id: int,
        job_id: int,
        task_id: str,
        *,
        expected: frozenset[JobState],
        actor_id: int,
        now: float,
        changes: JobChanges,
    ) -> tuple[Job, AuditEntry]:
        """A moderator adopts a provider task for a job (`adopt_sync`), audited with it."""
        async with self._db.transaction() as conn:
            job = await run_in(
                conn,
                lambda raw: adopt_sync(
                    raw, job_id, task_id, expected=expected, now=now, detail="adopted:moderator",
                    changes=changes,
                ),
            )
            entry = await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="jobs.attach",
                target=f"job:{job_id}", detail={"task_id": task_id}, now=now,
            )
        return job, entry

    async def usage(self, guild_id: int, *, since: float, until: float) -> list[UsageRow]:
        async with self._db.read() as conn:
            cursor = await conn.execute(_USAGE, (guild_id, guild_id, since, until))
            return [UsageRow.model_validate(row._asdict()) for row in await cursor.fetchall()]

    async def spent_job_ids(self, guild_id: int, *, since: float, until: float) -> set[int]:
        """The jobs created in [since, until) whose billed seconds were spent: settled and
        never given back, the leaderboard's rule (`usage`)."""
        async with self._db.read() as conn:
            cursor = await conn.execute(_SPENT_JOBS, (guild_id, guild_id, since, until))
            return {int(row[0]) for row in await cursor.fetchall()}

    async def jobs_between(self, guild_id: int, *, since: float, until: float) -> list[Job]:
        """Every job of the guild created in [since, until), oldest first (CSV export)."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM jobs WHERE guild_id = ? AND created_at >= ? AND created_at < ?"
                " ORDER BY id",
                (guild_id, since, until),
            )
            return [row_to_job(row) for row in await cursor.fetchall()]
