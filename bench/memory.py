"""Figure 4: peak RSS growth of the bot process while it moves a 100 MB clip and result.

The bot runs as `python -m bot run`; this driver reads its memory from /proc/<pid>/status.
After warm-up jobs (a small clip with a tiny result, then a 5 MB clip with a 5 MB
result, so every code path and buffer pool has been used once), the bot's peak RSS is
reset (`echo 5 > /proc/<pid>/clear_refs`) and its idle RSS read. Then one /edit with a
100 MB clip whose task returns a 100 MB result: the bot downloads the clip from the
emulator's CDN, probes it, serves it to the simulator from its media route, then downloads,
hashes and archives the result and posts it to the thread (premium tier 3: 100 MiB upload
limit, so it is attached). Growth = VmHWM afterwards − VmRSS before. VmRSS is also sampled
every 20 ms to show which phase the peak belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp

from bench.common import (
    MB,
    BenchError,
    Context,
    Figure,
    Stack,
    error_figure,
    mb,
    proc_status,
    reset_peak_rss,
)
from sandbox.demo.processes import Children

NAME = "memory"
TARGET_BYTES = 40 * MB
SIZE_MB = 100
SAMPLE_EVERY_S = 0.02


async def sample_rss(pid: int, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    for _ in range(int(600 / SAMPLE_EVERY_S)):  # bounded: 10 minutes at most
        with contextlib.suppress(OSError, KeyError):
            samples.append((time.time(), proc_status(pid)["VmRSS"]))
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


async def edit_and_wait(stack: Stack, clip_id: str, limit_s: float) -> Any:
    assert stack.db is not None
    last = await stack.db.max_job_id()
    await stack.slash({"prompt": "make it night", "video": clip_id})
    job_id = await stack.new_job_after(last)
    return await stack.wait_job_state(job_id, ["delivered"], limit_s)


async def run(ctx: Context) -> list[Figure]:
    workload = (
        f"one /edit: rehost a {SIZE_MB} MB clip (CDN → bot → provider) and deliver a "
        f"{SIZE_MB} MB result (provider → archive → Discord upload)"
    )
    target = f"growth < {TARGET_BYTES / MB:.0f} MB"
    workdir = ctx.subdir("memory")
    try:
        async with aiohttp.ClientSession() as session, Children(workdir) as children:
            stack = Stack(workdir, children, session)
            await stack.start_standins()
            small_id = await stack.upload(await ctx.media.asmall_clip())
            mid = await ctx.media.asized(5)
            mid_id = await stack.upload(mid)
            big = await ctx.media.asized(SIZE_MB)
            big_id = await stack.upload(big)
            await stack.sim.default_script(processing_s=0.5, estimated_time=1)
            bot = await stack.start_kling()
            assert bot.pid is not None and stack.db is not None
            pid = bot.pid
            await stack.warm_up({"prompt": "warm up", "video": small_id}, count=2)
            for row in await stack.db.jobs_after(0):
                await stack.wait_job_state(int(row["id"]), ["delivered"], 60.0)
            await stack.sim.script_next(
                processing_s=0.5, estimated_time=1, result_path=str(mid)
            )
            await edit_and_wait(stack, mid_id, 60.0)
            await asyncio.sleep(1.0)  # let status edits and logging settle

            await stack.sim.script_next(
                processing_s=1.0, estimated_time=1, result_path=str(big)
            )
            before = proc_status(pid)
            reset_ok = reset_peak_rss(pid)
            idle = proc_status(pid)["VmRSS"] if reset_ok else before["VmRSS"]
            samples: list[tuple[float, int]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(pid, samples, stop))
            began = time.time()
            try:
                row = await edit_and_wait(stack, big_id, 180.0)
                await asyncio.sleep(0.5)
            finally:
                stop.set()
                await sampler
            after = proc_status(pid)
            events = {e["to_state"]: e["at"] for e in await stack.db.events(int(row["id"]))}
            await stack.stop_bot()
    except Exception as error:
        return [error_figure("4", NAME, workload, target, error)]

    if not samples:
        return [error_figure("4", NAME, workload, target, BenchError("no RSS samples"))]
    peak = after["VmHWM"] if reset_ok else max(after["VmHWM"], max(r for _, r in samples))
    growth = peak - idle

    def phase_peak(start: float, end: float) -> int:
        inside = [rss for at, rss in samples if start <= at <= end]
        return max(inside) - idle if inside else 0

    rehost = phase_peak(began, events.get("submitted", began))
    deliver = phase_peak(events.get("downloading", began), events.get("delivered", time.time()))
    return [Figure(
        figure="4", name=NAME, workload=workload,
        result=f"growth {mb(growth)} (peak {mb(peak)}; sampled: rehost +{mb(rehost)}, "
        f"delivery +{mb(deliver)})",
        baseline=f"idle RSS {mb(idle)} after warm-up",
        ratio=peak / idle, target=target, passed=growth < TARGET_BYTES,
        limit=None if growth < TARGET_BYTES else (
            f"the peak came during the {'rehost' if rehost >= deliver else 'delivery'} "
            "phase: something holds a large part of the file in memory there"
        ),
        details={
            "idle_rss_bytes": idle, "peak_rss_bytes": peak, "growth_bytes": growth,
            "peak_reset": reset_ok, "before": before, "after": after,
            "rehost_sampled_growth_bytes": rehost, "delivery_sampled_growth_bytes": deliver,
            "file_bytes": SIZE_MB * MB, "samples": len(samples),
            "job_seconds": round(events.get("delivered", began) - began, 2),
        },
    )]
