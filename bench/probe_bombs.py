"""Figure 7: six hostile clips probed at once while normal edits run (issue 12).

The bot runs as `python -m bot run` with its default probe pool (PROBE_WORKERS=2,
PROBE_MEMORY_MB=512). After warm-up edits, its peak RSS is reset and, at the same moment,
six /edit commands with hostile clips (sample-count bombs that declare 60 million frames in
the index or 50 million in a fragment, tiny-packet clips at 1,000 packets a second, a clip
claiming 60000×60000 px) and several normal /edit commands are sent. Each bomb must end
`rejected` and each normal edit `delivered`, in both phases, or the figure fails: bombs that
cost nothing but stopped the normal edits would pass otherwise. Measured from outside the
bot's process: its RSS growth (VmHWM afterwards − VmRSS before; the probe workers are other
processes and do not count, which is the point) and the event loop's lag, as the bot's web
server answers a path no route serves (a 404 costs only the loop's attention) every 20 ms:
lag = answer time − the median answer time at idle.
The same normal edits alone, just before, are the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.common import (
    FINAL_STATES,
    MB,
    BenchError,
    Context,
    Figure,
    Stack,
    error_figure,
    mb,
    median,
    ms,
    percentile,
    poll_until,
    proc_status,
    reset_peak_rss,
)
from bench.memory import sample_rss
from bot.i18n import Text, english
from sandbox.demo.processes import Children
from tests.hostile_media import (
    fragmented_clip,
    huge_dimensions_clip,
    sample_count_bomb,
    tiny_packet_clip,
)

NAME = "probe bombs"
RSS_TARGET_BYTES = 300 * MB
LAG_TARGET_S = 0.050
ANSWER_EVERY_S = 0.02
BOMBS = {
    "sample-count-bomb-1.mp4": sample_count_bomb,
    "sample-count-bomb-2.mp4": sample_count_bomb,
    "fragmented-sample-count-bomb.mp4": lambda: fragmented_clip(50_000_000),
    "tiny-packets-1.mp4": lambda: tiny_packet_clip(1000, 100),
    "tiny-packets-2.mp4": lambda: tiny_packet_clip(1000, 100),
    "huge-dimensions.mp4": huge_dimensions_clip,
}


async def answer_times(
    session: aiohttp.ClientSession, url: str, times: list[float], stop: asyncio.Event
) -> None:
    """How long the bot takes to answer `url`, every ANSWER_EVERY_S until `stop`."""
    for _ in range(int(600 / ANSWER_EVERY_S)):  # bounded: 10 minutes at most
        began = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        times.append(time.perf_counter() - began)
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ANSWER_EVERY_S)


async def idle_answer_time(session: aiohttp.ClientSession, url: str) -> float:
    times: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(answer_times(session, url, times, stop))
    await asyncio.sleep(2.0)  # the measurement window, not synchronisation
    stop.set()
    await sampler
    return median(times)


async def all_final(stack: Stack, after: int, count: int, limit_s: float) -> list[Any]:
    assert stack.db is not None
    db = stack.db

    async def check() -> list[Any] | None:
        rows = await db.jobs_after(after)
        done = [row for row in rows if row["state"] in FINAL_STATES]
        return done if len(done) >= count else None

    return await poll_until(check, f"{count} jobs to finish", limit_s, 0.1)


@dataclass
class Phase:
    """One burst of /edit commands, measured from the moment it is sent until all end."""

    growth: int
    peak: int
    lags: list[float]
    states: list[str]
    refusals: list[str]
    elapsed_s: float

    @property
    def lag_p99(self) -> float:
        return percentile(self.lags, 99)


async def measure(
    stack: Stack, session: aiohttp.ClientSession, pid: int, idle_answer: float,
    videos: list[str],
) -> Phase:
    assert stack.db is not None and stack.web_url
    # A path no route serves: the 404 costs the bot only its event loop's attention.
    url = stack.web_url + "/loop-lag-probe"
    reset_ok = reset_peak_rss(pid)
    idle = proc_status(pid)["VmRSS"]
    samples: list[tuple[float, int]] = []
    answers: list[float] = []
    stop = asyncio.Event()
    samplers = [
        asyncio.create_task(sample_rss(pid, samples, stop)),
        asyncio.create_task(answer_times(session, url, answers, stop)),
    ]
    last = await stack.db.max_job_id()
    began = time.monotonic()
    try:
        await asyncio.gather(*(stack.slash({"prompt": "night", "video": v}) for v in videos))
        rows = await all_final(stack, last, len(videos), 120.0)
    finally:
        stop.set()
        await asyncio.gather(*samplers)
    elapsed = time.monotonic() - began
    after = proc_status(pid)
    peak = after["VmHWM"] if reset_ok else max([after["VmHWM"], *(r for _, r in samples)])
    return Phase(
        growth=peak - idle, peak=peak,
        lags=[max(0.0, answer - idle_answer) for answer in answers],
        states=[str(row["state"]) for row in rows],
        refusals=sorted({
            english(Text.from_stored(str(r["error_message"])))  # stored as msgid + params
            for r in rows if r["state"] == "rejected"
        }),
        elapsed_s=elapsed,
    )


async def run(ctx: Context) -> list[Figure]:
    normal = 10 if ctx.mode.full else 6
    workload = (
        f"{len(BOMBS)} hostile clips (2 declaring 60 M frames, 1 declaring 50 M in a "
        f"fragment, 2 with 100,000 tiny packets, 1 claiming 60000×60000 px) sent at once "
        f"with {normal} normal /edit"
    )
    target = f"RSS growth ≤ {RSS_TARGET_BYTES / MB:.0f} MB, loop lag p99 ≤ {ms(LAG_TARGET_S)}"
    workdir = ctx.subdir("probe-bombs")
    try:
        async with aiohttp.ClientSession() as session, Children(workdir) as children:
            stack = Stack(workdir, children, session)
            await stack.start_standins()
            small_id = await stack.upload(await ctx.media.asmall_clip())
            bomb_ids = []
            for name, make in BOMBS.items():
                path = workdir / name
                await asyncio.to_thread(path.write_bytes, make())
                bomb_ids.append(await stack.upload(path))
            await stack.sim.default_script(processing_s=0.5, estimated_time=1)
            bot = await stack.start_kling()
            assert bot.pid is not None and stack.web_url
            await stack.warm_up({"prompt": "warm up", "video": small_id}, count=2)
            await all_final(stack, 0, 2, 60.0)
            idle_answer = await idle_answer_time(session, stack.web_url + "/loop-lag-probe")
            plain = await measure(stack, session, bot.pid, idle_answer, [small_id] * normal)
            hostile = await measure(
                stack, session, bot.pid, idle_answer, [*bomb_ids, *[small_id] * normal]
            )
            await stack.stop_bot()
    except Exception as error:
        return [error_figure("7", NAME, workload, target, error)]

    if set(plain.states) != {"delivered"}:
        error = BenchError(f"a normal edit did not go through: {plain.states}")
        return [error_figure("7", NAME, workload, target, error)]
    refused = hostile.states.count("rejected")
    delivered = hostile.states.count("delivered")  # bombs are never delivered
    within = hostile.growth <= RSS_TARGET_BYTES and hostile.lag_p99 <= LAG_TARGET_S
    passed = within and refused == len(BOMBS) and delivered == normal
    if passed:
        limit = None
    elif hostile.growth > RSS_TARGET_BYTES:
        limit = "RSS grew past the target: something parses member media in the bot's process"
    elif not within:
        limit = "the event loop was held while the burst was handled"
    elif refused != len(BOMBS):
        limit = f"only {refused} of the {len(BOMBS)} hostile clips were refused"
    else:
        limit = f"only {delivered} of the {normal} normal edits beside the bombs were delivered"
    return [Figure(
        figure="7", name=NAME, workload=workload,
        result=f"RSS growth {mb(hostile.growth)}, loop lag p99 {ms(hostile.lag_p99)} "
        f"(max {ms(max(hostile.lags))}, {len(hostile.lags)} samples); {refused} of "
        f"{len(BOMBS)} bombs refused, {delivered} of {normal} normal edits delivered, all in "
        f"{hostile.elapsed_s:.1f} s",
        baseline=f"the {normal} normal edits alone: growth {mb(plain.growth)}, "
        f"lag p99 {ms(plain.lag_p99)} ({len(plain.lags)} samples)",
        ratio=hostile.lag_p99 / plain.lag_p99 if plain.lag_p99 else None,
        target=target, passed=passed, limit=limit,
        details={
            "idle_answer_s": idle_answer,
            "hostile": {**asdict(hostile), "lag_p99_s": hostile.lag_p99},
            "plain": {**asdict(plain), "lag_p99_s": plain.lag_p99},
        },
    )]
