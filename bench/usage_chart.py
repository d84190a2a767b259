"""Figure 10: the `/kling-admin usage` chart at its bound, and the event loop while it renders.

The bound: MAX_DAYS (93) days of jobs by many members, every member spending every day (the
quick mode 300 members, the full mode 2000). Measured in this process, as AdminService.usage
does it: the series (`daily_usage`, on the loop: a pass over the jobs) and the PNG
(`render_usage_png` in a thread), and meanwhile the loop's lag: a task that sleeps 5 ms at a
time records how late it wakes. The baseline is the same ticker with nothing rendering.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Context, Figure, error_figure, ms
from bot.admin.models import Period
from bot.admin.usage_chart import MAX_DAYS, ChartWords, daily_usage, render_usage_png
from bot.i18n import english
from storage.models import Job, JobSource, JobState

NAME = "usage chart"
TARGET_S = 1.0  # series + PNG, the moderator's wait beyond the queries
TARGET_LAG_S = 0.1  # the loop keeps answering interactions while the chart renders
TARGET_BYTES = 300_000
TICK_S = 0.005
DAY = 86_400.0
START = 1_798_761_600.0  # 2027-01-01 00:00 UTC


def _jobs(members: int) -> list[Job]:
    template = Job(
        id=0, guild_id=1, channel_id=2, user_id=0, state=JobState.DELIVERED,
        model="kling-o1-video-edit", prompt="p", keep_audio=True,
        source=JobSource(video_url="https://cdn.example/clip.mp4"), parent_job_id=None,
        duration_s=4.0, billed_seconds=4, credits=48.0, provider_task_id="t",
        provider_status="completed", progress=100, estimated_time_s=None, callback_secret="c",
        result_url=None, status_message_id=None, thread_id=None, delivered_message_id=None,
        error_code=None, error_message=None, created_at=START, updated_at=START,
        submitted_at=None, completed_at=None, delivered_at=None, ended_at=None,
        next_poll_at=None, poll_count=0, download_attempts=0, delivery_attempts=0,
        next_delivery_at=None, poll_errors=0, not_found_since=None,
    )
    return [
        template.model_copy(update={
            "id": day * members + member, "user_id": 1000 + member,
            "created_at": START + day * DAY + 60, "billed_seconds": member % 10 + 1,
        })
        for day in range(MAX_DAYS) for member in range(members)
    ]


async def _max_lag(stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(TICK_S)
        worst = max(worst, time.perf_counter() - began - TICK_S)
    return worst


async def _measure(jobs: list[Job]) -> tuple[float, int, float, float]:
    stop = asyncio.Event()
    idle = asyncio.create_task(_max_lag(stop))
    await asyncio.sleep(0.5)
    stop.set()
    baseline = await idle
    stop = asyncio.Event()
    ticker = asyncio.create_task(_max_lag(stop))
    began = time.perf_counter()
    usage = daily_usage(jobs, {job.id for job in jobs}, since=START,
                        until=START + MAX_DAYS * DAY, monthly_budget=6000)
    words = ChartWords.for_reader(Period.MONTH, english, {m: f"member{m}" for m in usage.members})
    png = await asyncio.to_thread(render_usage_png, usage, words)
    took = time.perf_counter() - began
    stop.set()
    return took, len(png), await ticker, baseline


async def run(ctx: Context) -> list[Figure]:
    members = 2000 if ctx.mode.full else 300
    workload = f"{MAX_DAYS} days × {members} members ({MAX_DAYS * members} jobs)"
    target = f"≤ {TARGET_S:g} s, loop lag ≤ {ms(TARGET_LAG_S)}, PNG ≤ {TARGET_BYTES // 1000} kB"
    try:
        jobs = await asyncio.to_thread(_jobs, members)
        took, size, lag, baseline = await _measure(jobs)
    except Exception as error:
        return [error_figure("10", NAME, workload, target, error)]
    passed = took <= TARGET_S and lag <= TARGET_LAG_S and size <= TARGET_BYTES
    return [Figure(
        figure="10", name=NAME, workload=workload,
        result=f"{ms(took)}, loop lag {ms(lag)}, PNG {size / 1000:.0f} kB",
        baseline=f"loop lag {ms(baseline)} idle", ratio=None, target=target, passed=passed,
        details={"seconds": took, "png_bytes": size, "max_lag_s": lag, "idle_lag_s": baseline},
        limit=None if passed else "matplotlib's Agg drawing of the bars (one process, a thread)",
    )]
