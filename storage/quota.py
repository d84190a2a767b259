"""The quota ledger and the atomic admit/reserve/settle/refund/release operations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Unpack

from storage.database import AsyncConn, Database, SyncConn, run_in
from storage.guilds import (
    read_blocked,
    read_channel_rules,
    read_guild_settings,
    read_overrides,
    write_audit,
)
from storage.job_rows import create_sync
from storage.media import expire_inputs_sync
from storage.models import (
    ACTIVE_STATES,
    AuditEntry,
    Job,
    JobChanges,
    JobState,
    LedgerEntry,
    LedgerKind,
    NewJob,
    UsageSnapshot,
)
from storage.transitions import transition_in, transition_sync

# The lock a check of a guild's limits holds until its job or reservation is written.
_GUILD_LIMITS = "guild-limits"

# Jobs that count against the concurrent-job limit: `JobState.is_active`, as bound values.
_ACTIVE = sorted(state.value for state in ACTIVE_STATES)
_COUNT_ACTIVE = (
    "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ?"
    f" AND state IN ({', '.join('?' for _ in _ACTIVE)})"
)

# A job's refund/release/settle entries count at the time of its reservation, so a
# refund issued after midnight gives back yesterday's seconds, not today's.
_JOB_USAGE = """
SELECT COALESCE(SUM(entry.seconds), 0)
FROM quota_ledger AS reservation
JOIN quota_ledger AS entry ON entry.job_id = reservation.job_id
WHERE reservation.kind = 'reserve' AND reservation.guild_id = ? {user_clause}
  AND reservation.at >= ?
  AND entry.kind IN ('reserve', 'settle', 'refund', 'release')
"""


async def _scalar(conn: AsyncConn, sql: str, params: Sequence[object]) -> float:
    cursor = await conn.execute(sql, tuple(params))
    row = await cursor.fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


async def _user_usage(conn: AsyncConn, guild_id: int, user_id: int, since: float) -> int:
    sql = _JOB_USAGE.format(user_clause="AND reservation.user_id = ?")
    return int(await _scalar(conn, sql, (guild_id, user_id, since)))


async def guild_usage_in(conn: AsyncConn, guild_id: int, since: float) -> int:
    """Net billed seconds of the guild's jobs reserved since `since` (refunds give back)."""
    return int(await _scalar(conn, _JOB_USAGE.format(user_clause=""), (guild_id, since)))


async def _last_reset(conn: AsyncConn, guild_id: int, user_id: int) -> float:
    return await _scalar(
        conn,
        "SELECT MAX(at) FROM quota_ledger WHERE guild_id = ? AND user_id = ? AND kind = 'reset'",
        (guild_id, user_id),
    )


async def _granted(conn: AsyncConn, guild_id: int, user_id: int, since: float) -> int:
    return int(
        await _scalar(
            conn,
            "SELECT SUM(seconds) FROM quota_ledger"
            " WHERE guild_id = ? AND user_id = ? AND kind = 'grant' AND at >= ?",
            (guild_id, user_id, since),
        )
    )


async def _refused_attempts(
    conn: AsyncConn, guild_id: int, user_id: int, after: float
) -> list[float]:
    """When the member's jobs created after `after` were rejected, newest first.

    Every attempt that downloads anything is a job row first, so rejected rows are exactly
    the refusals that cost the bot a download (index `jobs_by_user`).
    """
    cursor = await conn.execute(
        "SELECT created_at FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at > ?"
        " AND state = ? ORDER BY created_at DESC",
        (guild_id, user_id, after, JobState.REJECTED.value),
    )
    return [float(row[0]) for row in await cursor.fetchall()]


async def read_snapshot(
    conn: AsyncConn,
    *,
    guild_id: int,
    user_id: int,
    role_ids: Sequence[int],
    day_start: float,
    month_start: float,
    attempts_after: float | None = None,
) -> UsageSnapshot:
    """The member's usage and limits; with `attempts_after`, also their refused attempts
    since then. A moderator's reset hides earlier usage and earlier refusals alike."""
    reset_at = await _last_reset(conn, guild_id, user_id)
    day_from, month_from = max(day_start, reset_at), max(month_start, reset_at)
    active = await _scalar(conn, _COUNT_ACTIVE, (guild_id, user_id, *_ACTIVE))
    last_submit = await _scalar(
        conn,
        "SELECT MAX(at) FROM quota_ledger WHERE guild_id = ? AND user_id = ? AND kind = 'reserve'",
        (guild_id, user_id),
    )
    user_override, role_overrides = await read_overrides(conn, guild_id, user_id, role_ids)
    return UsageSnapshot(
        used_today=await _user_usage(conn, guild_id, user_id, day_from),
        used_month=await _user_usage(conn, guild_id, user_id, month_from),
        granted_today=await _granted(conn, guild_id, user_id, day_from),
        granted_month=await _granted(conn, guild_id, user_id, month_from),
        guild_used_month=await guild_usage_in(conn, guild_id, month_start),
        active_jobs=int(active),
        last_submit_at=last_submit or None,
        blocked=await read_blocked(conn, guild_id, user_id),
        guild=await read_guild_settings(conn, guild_id),
        user_override=user_override,
        role_overrides=role_overrides,
        channel_rules=await read_channel_rules(conn, guild_id),
        refused_attempts=(
            [] if attempts_after is None
            else await _refused_attempts(conn, guild_id, user_id, max(attempts_after, reset_at))
        ),
    )


async def _add_entry(
    conn: AsyncConn,
    *,
    guild_id: int,
    user_id: int,
    kind: LedgerKind,
    seconds: int,
    now: float,
    job_id: int | None = None,
    actor_id: int | None = None,
    note: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, seconds, at, actor_id, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (guild_id, user_id, job_id, kind.value, seconds, now, actor_id, note),
    )


async def _reserved_seconds(conn: AsyncConn, job_id: int) -> int | None:
    cursor = await conn.execute(
        "SELECT seconds FROM quota_ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None


def _close_reservation_sync(
    raw: SyncConn, job_id: int, kind: LedgerKind, now: float
) -> None:
    """Settle (0 s), refund or release (the reserved seconds back) a job's reservation,
    unless it has none or it is closed already: one statement."""
    raw.execute(
        "INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, seconds, at)"
        " SELECT guild_id, user_id, job_id, CAST(? AS TEXT), CASE WHEN ? THEN 0 ELSE -seconds END,"
        " CAST(? AS DOUBLE PRECISION)"
        " FROM quota_ledger WHERE job_id = ? AND kind = 'reserve' AND NOT EXISTS ("
        "  SELECT 1 FROM quota_ledger WHERE job_id = ?"
        "  AND kind IN ('settle', 'refund', 'release'))",
        (kind.value, kind is LedgerKind.SETTLE, now, job_id, job_id),
    )


async def refund_in(
    conn: AsyncConn, job: Job, *, now: float, actor_id: int | None, note: str | None
) -> int:
    """Give a job's reserved seconds back unless they already were; returns the seconds.

    Unlike `close_job`, this refunds a settled job too: a moderator who stops a job the
    member never received decides the member should not pay for it. The unique
    (job_id, kind) index makes a second refund impossible even if a caller slips.
    """
    reserved = await _reserved_seconds(conn, job.id)
    if reserved is None:
        return 0
    cursor = await conn.execute(
        "SELECT 1 FROM quota_ledger WHERE job_id = ? AND kind IN ('refund', 'release')",
        (job.id,),
    )
    if await cursor.fetchone() is not None:
        return 0
    await _add_entry(
        conn, guild_id=job.guild_id, user_id=job.user_id, kind=LedgerKind.REFUND,
        seconds=-reserved, now=now, job_id=job.id, actor_id=actor_id, note=note,
    )
    return reserved


class QuotaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def snapshot(
        self,
        *,
        guild_id: int,
        user_id: int,
        role_ids: Sequence[int],
        day_start: float,
        month_start: float,
        attempts_after: float | None = None,
    ) -> UsageSnapshot:
        async with self._db.read() as conn:
            return await read_snapshot(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                role_ids=role_ids,
                day_start=day_start,
                month_start=month_start,
                attempts_after=attempts_after,
            )

    async def admit(
        self,
        new: NewJob,
        *,
        day_start: float,
        month_start: float,
        attempts_after: float,
        now: float,
        decide: Callable[[UsageSnapshot], None],
    ) -> Job:
        """Check the member's limits and create the job in one transaction: of racing
        submits, exactly as many are created as the limits allow, because each one counts
        the member's running edits and refused attempts with the others' jobs committed.

        `decide` raises to refuse; nothing is written then. The new job holds one of the
        member's running-edit slots from this moment until it ends.

        SQLite: `transaction()` is BEGIN IMMEDIATE, which takes the database's write lock
        before the first read, so an admission on another connection (or process) waits
        for this one's commit (busy timeout). PostgreSQL: the guild's lock, taken before
        counting, does the same for every admission and reservation in the guild.
        """
        async with self._db.transaction() as conn:
            await conn.lock(_GUILD_LIMITS, new.guild_id)
            snapshot = await read_snapshot(
                conn,
                guild_id=new.guild_id,
                user_id=new.user_id,
                role_ids=new.source.role_ids,
                day_start=day_start,
                month_start=month_start,
                attempts_after=attempts_after,
            )
            decide(snapshot)
            return await run_in(conn, lambda raw: create_sync(raw, new, now))

    async def reserve(
        self,
        job: Job,
        *,
        billed_seconds: int,
        quota_seconds: int,
        credits: float,
        duration_s: float,
        role_ids: Sequence[int],
        day_start: float,
        month_start: float,
        now: float,
        decide: Callable[[UsageSnapshot], None],
    ) -> Job:
        """Check limits and reserve in one transaction: two racing submits cannot both win.

        `decide` raises to refuse; nothing is written then. The running-edit limit is not
        for `decide` to check again: the job holds its slot since `admit`. Serialised with
        the guild's other reservations and admissions like `admit` (the guild's budget is
        shared by its members). The job keeps the provider's `billed_seconds`; the ledger
        counts `quota_seconds` (ModelSpec.quota_seconds), which refunds give back.
        """
        async with self._db.transaction() as conn:
            await conn.lock(_GUILD_LIMITS, job.guild_id)
            snapshot = await read_snapshot(
                conn,
                guild_id=job.guild_id,
                user_id=job.user_id,
                role_ids=role_ids,
                day_start=day_start,
                month_start=month_start,
            )
            decide(snapshot)
            await _add_entry(
                conn,
                guild_id=job.guild_id,
                user_id=job.user_id,
                kind=LedgerKind.RESERVE,
                seconds=quota_seconds,
                now=now,
                job_id=job.id,
            )
            return await transition_in(
                conn,
                job.id,
                JobState.RESERVED,
                expected={JobState.FETCHING},
                now=now,
                billed_seconds=billed_seconds,
                credits=credits,
                duration_s=duration_s,
            )

    async def close_job(
        self,
        job_id: int,
        kind: LedgerKind,
        to_state: JobState,
        *,
        expected: set[JobState],
        now: float,
        detail: str | None = None,
        inputs_expire_at: float,
        **changes: Unpack[JobChanges],
    ) -> Job:
        """End a job's reservation (settle, refund or release) together with its transition;
        the provider is then done with the job's inputs, which expire at `inputs_expire_at`.

        Idempotent on the ledger: a job's reservation is closed at most once.
        One transaction, one round trip to the database thread.
        """
        if kind not in (LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.RELEASE):
            raise ValueError(f"{kind} does not close a reservation")

        def work(raw: SyncConn) -> Job:
            job = transition_sync(
                raw, job_id, to_state, expected=expected, now=now, detail=detail,
                changes=changes,
            )
            _close_reservation_sync(raw, job_id, kind, now)
            expire_inputs_sync(raw, job_id, inputs_expire_at)
            return job

        return await self._db.run(work)

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        seconds: int,
        *,
        actor_id: int,
        now: float,
        note: str | None = None,
        audit: bool = False,
    ) -> AuditEntry | None:
        """Add one-off allowance; with `audit`, the audit row commits with the grant."""
        async with self._db.transaction() as conn:
            await _add_entry(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=LedgerKind.GRANT,
                seconds=seconds,
                now=now,
                actor_id=actor_id,
                note=note,
            )
            if not audit:
                return None
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="user.grant",
                target=f"user:{user_id}", detail={"seconds": seconds, "note": note}, now=now,
            )

    async def reset(
        self, guild_id: int, user_id: int, *, actor_id: int, now: float, audit: bool = False
    ) -> AuditEntry | None:
        """Hide earlier usage from the member's windows; with `audit`, audited atomically."""
        async with self._db.transaction() as conn:
            await _add_entry(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                kind=LedgerKind.RESET,
                seconds=0,
                now=now,
                actor_id=actor_id,
            )
            if not audit:
                return None
            return await write_audit(
                conn, guild_id=guild_id, actor_id=actor_id, action="user.reset",
                target=f"user:{user_id}", detail=None, now=now,
            )

    async def guild_used(self, guild_id: int, since: float) -> int:
        async with self._db.read() as conn:
            return await guild_usage_in(conn, guild_id, since)

    async def entries_for_job(self, job_id: int) -> list[LedgerEntry]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM quota_ledger WHERE job_id = ? ORDER BY id", (job_id,)
            )
            rows = await cursor.fetchall()
        return [LedgerEntry.model_validate(row._asdict()) for row in rows]
