"""`make bench` / `python -m bench`: run every figure, print the table, write latest.json.

Quick mode by default (a few minutes on 2 cores; smaller counts, same file sizes);
``BENCH_FULL=1`` runs the full counts and real-time provider durations.
``BENCH_ONLY=1,4`` runs only some figures (for development; the JSON says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    ack_latency,
    delivery,
    media_serving,
    memory,
    probe_bombs,
    provider_calls,
    tracker_scale,
    usage_chart,
)
from bench.common import (
    Context,
    Figure,
    MediaFiles,
    figure_to_json,
    machine_info,
    mode_from_env,
    remove_tree,
    render_table,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

Runner = Callable[[Context], Awaitable[list[Figure]]]
FIGURES: list[tuple[str, str, Runner, float, float]] = [
    # number, title, runner, time limit quick, time limit full (seconds)
    ("1", "acknowledgement latency", ack_latency.run, 150, 600),
    ("2", "delivery overhead", delivery.run, 120, 600),
    ("3", "provider calls per task", provider_calls.run, 90, 900),
    ("4", "memory", memory.run, 90, 300),
    ("5", "tracker scale", tracker_scale.run, 150, 900),
    ("6", "media serving", media_serving.run, 90, 300),
    ("7", "probe bombs", probe_bombs.run, 120, 300),
    ("8", "usage chart", usage_chart.run, 60, 120),
]


def _log(text: str) -> None:
    print(text, flush=True)


async def _run_all(only: set[str] | None) -> tuple[list[Figure], dict[str, float]]:
    mode = mode_from_env()
    workdir = Path(tempfile.mkdtemp(prefix="kling-bench-"))
    ctx = Context(mode=mode, workdir=workdir, media=MediaFiles(workdir), log=_log)
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    try:
        for number, title, runner, quick_limit, full_limit in FIGURES:
            if only is not None and number not in only:
                continue
            limit = full_limit if mode.full else quick_limit
            _log(f"[{number}] {title} …")
            began = time.monotonic()
            try:
                async with asyncio.timeout(limit):
                    figures.extend(await runner(ctx))
            except TimeoutError:
                figures.append(Figure(
                    figure=number, name=title, workload="(all workloads)",
                    result="not measured", baseline="-", ratio=None, target="-", passed=None,
                    limit=f"the benchmark took longer than its {limit:.0f} s limit",
                ))
            seconds[number] = round(time.monotonic() - began, 1)
            _log(f"[{number}] done in {seconds[number]:.1f} s")
    finally:
        keep = os.environ.get("BENCH_KEEP_WORKDIR", "") not in ("", "0")
        if keep:
            _log(f"work dir kept: {workdir}")
        else:
            remove_tree(workdir)
    return figures, seconds


def main() -> int:
    only_env = os.environ.get("BENCH_ONLY", "").strip()
    only = {part.strip() for part in only_env.split(",") if part.strip()} or None
    mode = mode_from_env()
    machine = machine_info()
    _log(
        f"kling-edit-bot benchmarks · {mode.name} mode"
        + ("" if mode.full else " (smaller counts; BENCH_FULL=1 for the long run)")
        + f" · {machine['nproc']} cores, {machine['cpu_model']}, {machine['ram_gib']} GiB"
    )
    started = time.monotonic()

    async def guarded() -> tuple[list[Figure], dict[str, float]]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        return await _run_all(only)

    try:
        figures, seconds = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nInterrupted; every process the benchmark started has been stopped.",
              file=sys.stderr)
        return 130
    total = time.monotonic() - started
    print()
    print(render_table(figures))
    misses = [f for f in figures if f.passed is not True]
    if misses:
        print("\nMissed or not measured:")
        for figure in misses:
            print(f"  {figure.figure} ({figure.name}): {figure.limit or 'see latest.json'}")
    print(f"\n{mode.name} mode, {total:.0f} s in all; details in {RESULTS}")
    write_results(RESULTS, {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode.name,
        "only": sorted(only) if only else None,
        "machine": machine,
        "seconds": {**seconds, "total": round(total, 1)},
        "figures": [figure_to_json(f) for f in figures],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
