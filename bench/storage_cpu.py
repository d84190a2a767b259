"""Figure 9: CPU per storage call for the tracker's hot calls, PostgreSQL beside SQLite.

The calls run in this process, one at a time, on a table of 1,000 jobs SUBMITTED and due:
lease (one pass of the tracker: up to 16 due jobs and the next due time), record a poll (the
schedule and figures a poll writes), transition (SUBMITTED → DOWNLOADING with its event row)
and, for several processes, a token of the shared provider rate bucket. CPU is the bot's
own (every thread: SQLite runs on aiosqlite's) plus, on PostgreSQL, its server backends'
(read from /proc, bench/proc_stats.py): SQLite does the database's work in the bot.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, error_figure, skipped_figure
from bench.postgres import server_url, throwaway_schema, unreachable
from bench.proc_stats import client_ports, process_cpu
from bench.tracker_scale import create_submitted

NAME = "CPU per storage call"
JOBS = 1000
CALLS = 400  # of each kind: ~1 s of CPU, against /proc's 10 ms ticks
LEASE_LIMIT = 16  # the tracker's default slots
SEED_BATCH = 250
MODEL = "kling-o1-video-edit"
Call = Callable[[int], Awaitable[Any]]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def backends(db: Any, admin: Any) -> list[int]:
    """The server backends of this process's connections (none on SQLite)."""
    if admin is None:
        return []
    ports = sorted(client_ports(os.getpid()))
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports
    )
    return [int(row["pid"]) for row in rows]


async def seed(db: Any, count: int) -> list[int]:
    from storage.models import JobSource, NewJob

    now = time.time()
    ids: list[int] = []
    for start in range(0, count, SEED_BATCH):
        def insert(raw: Any, start: int = start) -> None:
            for user in range(start, min(count, start + SEED_BATCH)):
                create_submitted(raw, new=NewJob(
                    guild_id=1, channel_id=2, user_id=user, model=MODEL, prompt="cpu",
                    callback_secret="s" * 32,
                    source=JobSource(video_url="https://cdn.example/clip.mp4"),
                ), now=now, changes={"provider_task_id": f"task-{user}", "submitted_at": now,
                                     "next_poll_at": 0.0})

        await db.run(insert)
    rows = await db.fetch("SELECT id FROM jobs ORDER BY id")
    ids.extend(int(row[0]) for row in rows)
    return ids


def hot_calls(db: Any, job_ids: list[int]) -> dict[str, Call]:
    from storage.jobs import JobRepository
    from storage.models import JobState
    from storage.rate import RateBuckets

    jobs, buckets = JobRepository(db, owner="bench"), RateBuckets(db)
    submitted = {JobState.SUBMITTED}
    kept = len(job_ids) - CALLS - 1
    movable = iter(job_ids[kept:])  # each transition (and its warm-up) moves one job for good

    async def lease(n: int) -> Any:
        # Leased until long ago, so every job stays due and each pass finds a full batch.
        return await jobs.lease_due(time.time(), until=1.0, limit=LEASE_LIMIT)

    async def record_poll(n: int) -> Any:
        now = time.time()
        return await jobs.update(
            job_ids[n % kept], now=now, expected=submitted,
            poll_count=n, poll_errors=0, not_found_since=None, provider_status="processing",
            error_code=None, error_message=None, progress=n % 100, estimated_time_s=300.0,
            next_poll_at=now + 30.0,
        )

    async def transition(n: int) -> Any:
        return await jobs.transition(next(movable), JobState.DOWNLOADING, expected=submitted,
                                     now=time.time(), progress=100)

    async def rate_token(n: int) -> Any:
        return await buckets.take("bench", now=time.time(), per_second=1e9, capacity=1e9)

    return {"lease due jobs": lease, "record a poll": record_poll,
            "transition": transition, "provider rate token": rate_token}


async def measure(target: Path | str, schema: str | None, admin: Any) -> dict[str, Any]:
    from storage.database import Database

    db = await Database.open(target, schema=schema)
    try:
        job_ids = await seed(db, JOBS)
        result: dict[str, Any] = {}
        for name, call in hot_calls(db, job_ids).items():
            await call(0)  # statements prepared, caches warm
            pids = await backends(db, admin)
            client, server = own_cpu(), {pid: process_cpu(pid) for pid in pids}
            for n in range(1, CALLS + 1):
                await call(n)
            client_s = own_cpu() - client
            server_s = sum(process_cpu(pid) - cpu for pid, cpu in server.items())
            result[name] = {"client_ms": client_s * 1000 / CALLS,
                            "server_ms": server_s * 1000 / CALLS}
        return result
    finally:
        await db.close()


def row(name: str, pg: dict[str, float], lite: dict[str, float]) -> Figure:
    total = pg["client_ms"] + pg["server_ms"]
    return Figure(
        figure="9", name=NAME, workload=f"{name} ({JOBS} jobs due; {CALLS} calls, one at a time)",
        result=(f"PostgreSQL {total:.2f} ms: bot {pg['client_ms']:.2f} + server "
                f"{pg['server_ms']:.2f}"),
        baseline=f"SQLite {lite['client_ms']:.2f} ms, all in the bot",
        ratio=total / lite["client_ms"] if lite["client_ms"] else None,
        target="reported side by side", passed=True, judged=False,
        details={"postgresql": pg, "sqlite": lite},
    )


async def run(ctx: Context) -> list[Figure]:
    workload, target = "the tracker's hot storage calls", "reported side by side"
    url = server_url()
    if why := await unreachable(url):
        ctx.log(f"    skipped: {why}")
        return [skipped_figure("9", NAME, workload, target, why)]
    try:
        lite = await measure(ctx.subdir("storage-cpu") / "kling.sqlite3", None, None)
        async with throwaway_schema(url, "kling_bench_cpu") as schema:
            pg = await measure(url, schema.name, schema.connection)
    except Exception as error:
        return [error_figure("9", NAME, workload, target, error)]
    return [row(name, pg[name], lite[name]) for name in pg]
