"""Figure 8b: from `kill -9` of a process holding leases to the survivor's first poll of a
job it left behind (see bench/cluster.py for the setting)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.common import BenchError, Figure, poll_until
from bench.postgres import Schema
from sandbox.demo.processes import Child

NAME = "failover after kill -9"
VICTIM, SURVIVOR = "shards-0", "shards-1"
TARGET_S = 30.0
ACTIVE = 40  # jobs still due every second while a process is killed
PARKED_S = 3600.0
SETTLE_S = 3.0
IN_FLIGHT_S = 5.0  # how long the provider takes to answer the polls the victim dies with
# A job held by a process: its due time is its lease's end (storage/jobs.py, _HELD_BY_OTHER).
_HELD = "leased_by = $1 AND next_poll_at = lease_until AND lease_until > $2"


@dataclass(frozen=True)
class Failover:
    lease_s: float
    orphans: int  # jobs the victim was polling when it died
    leases_end_s: float  # the first of their leases ends this long after the kill
    first_poll_s: float  # the survivor's first lease of one of them, after the kill
    taken_early: int  # orphans the survivor took before their lease ended: must be 0


async def park_most_jobs(schema: Schema) -> None:
    """Leave ACTIVE jobs (and those being polled) due; the rest wait an hour. In 8a's
    backlog an orphan, due at its lease's end, would queue behind thousands of jobs due
    earlier: that wait is the backlog's, not the failover's."""
    now = time.time()
    await schema.connection.execute(
        "UPDATE jobs SET next_poll_at = $1 WHERE id > (SELECT MIN(id) + $2 FROM jobs)"
        " AND NOT COALESCE(next_poll_at = lease_until AND lease_until > $3, FALSE)",
        now + PARKED_S, ACTIVE, now,
    )
    await asyncio.sleep(SETTLE_S)  # the trackers go through what was due before


async def measure_failover(
    schema: Schema, victim: Child, lease_s: float, http: aiohttp.ClientSession, sim_url: str
) -> Failover:
    conn = schema.connection
    await park_most_jobs(schema)
    # The next polls wait for the provider: the victim dies with them in flight, as a
    # process does, instead of between two polls of a few milliseconds.
    async with http.post(f"{sim_url}/_sim/delay-next-get",
                         json={"seconds": IN_FLIGHT_S, "count": ACTIVE}) as response:
        response.raise_for_status()

    async def holding() -> int | None:
        held = await conn.fetchval(f"SELECT COUNT(*) FROM jobs WHERE {_HELD}", VICTIM,
                                   time.time())
        return int(held) or None

    await poll_until(holding, f"{VICTIM} to hold a lease", 10.0, 0.01)
    killed_at = time.time()
    victim.kill()
    if victim.proc is not None:
        await victim.proc.wait()
    orphans = {
        int(row["id"]): float(row["lease_until"])
        for row in await conn.fetch(f"SELECT id, lease_until FROM jobs WHERE {_HELD}",
                                    VICTIM, killed_at)
    }
    if not orphans:
        raise BenchError(f"{VICTIM} held no lease when it was killed")

    async def taken() -> list[Any] | None:
        rows = await conn.fetch(
            "SELECT id, lease_until FROM jobs WHERE id = ANY($1::bigint[]) AND leased_by = $2",
            list(orphans), SURVIVOR,
        )
        return rows or None

    rows = await poll_until(taken, f"{SURVIVOR} to poll a job {VICTIM} left behind",
                            lease_s + 60.0, 0.05)
    starts = {int(row["id"]): float(row["lease_until"]) - lease_s for row in rows}
    return Failover(
        lease_s=lease_s, orphans=len(orphans),
        leases_end_s=min(orphans.values()) - killed_at,
        first_poll_s=min(starts.values()) - killed_at,
        taken_early=sum(1 for job, start in starts.items() if start < orphans[job]),
    )


def failover_figure(target: str, result: Failover) -> Figure:
    passed = result.first_poll_s <= TARGET_S and result.taken_early == 0
    limit = None
    if result.taken_early:
        limit = f"{result.taken_early} orphaned jobs were taken before their lease ended"
    elif not passed:
        limit = (f"an orphaned job waits for its lease to end ({result.lease_s:g} s after "
                 "its poll began)")
    return Figure(
        figure="8b", name=NAME,
        workload=(f"kill -9 of {VICTIM} after 8a, while it polled {result.orphans} jobs; "
                  f"{ACTIVE} jobs due every second, the rest parked"),
        result=(f"{result.first_poll_s:.1f} s to the survivor's first poll of an orphaned "
                f"job (their leases ended {result.leases_end_s:.1f} s after the kill; "
                f"{result.taken_early} taken early)"),
        baseline=(f"lease {result.lease_s:g} s, renewed every {result.lease_s / 3:.1f} s "
                  "while a step runs"),
        ratio=None, target=target, passed=passed, details=asdict(result), limit=limit,
    )
