"""Shared pieces of the benchmark suite: run modes, results, the table, media, processes.

Every figure module exposes ``async def run(ctx: Context) -> list[Figure]``. Processes are
started with the demo's machinery (``sandbox.demo.processes``): each child has its own
session and is always stopped (SIGTERM, then SIGKILL) when its block ends. Everything talks
over 127.0.0.1 only; every wait below is bounded in time and every loop in count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from sandbox.demo.control import ControlError, EmulatorControl, SimulatorControl
from sandbox.demo.processes import (
    Child,
    Children,
    DemoError,
    EmulatorInfo,
    child_env,
    free_port,
    parse_emulator_line,
    parse_simulator_line,
    python_module,
)
from sandbox.media_samples import make_mp4, probe_video

T = TypeVar("T")

TOKEN = "bench-token"
API_KEY = "sk-evo-bench"
MEMBER = "alice"
READY_LIMIT_S = 20.0
MB = 1_000_000  # decimal, like the bot and EvoLink
REPO_ROOT = Path(__file__).resolve().parent.parent


def bench_child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """For children that run bench modules: the repo on the path (bench is not installed)."""
    path = os.environ.get("PYTHONPATH", "")
    return child_env({
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT),
        **(extra or {}),
    })


class BenchError(Exception):
    """A step of a figure did not happen in time or went wrong; the message says what."""


# --- run modes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """Sizes of every workload. Quick mode shrinks counts, never the file sizes."""

    full: bool
    singles: int  # figure 1: single /edit commands, one after another
    bursts: int  # figure 1: bursts of `burst_size` pooled per workload
    burst_size: int
    delivery_runs: int  # figure 2: deliveries per size
    calls_scale: float  # figure 3: real time = provider time / calls_scale
    calls_tasks: int  # figure 3: tasks per (duration, callbacks) case
    scale_jobs: tuple[int, int]  # figure 5: small and large in-flight counts
    scale_time_scale: float  # figure 5: simulated seconds per real second
    scale_window_min: float  # figure 5: measured window, simulated minutes
    serving_rounds: int  # figure 6: rounds per server

    @property
    def name(self) -> str:
        return "full" if self.full else "quick"


QUICK = Mode(
    full=False, singles=20, bursts=1, burst_size=100, delivery_runs=7, calls_scale=20.0,
    calls_tasks=4, scale_jobs=(20, 2000), scale_time_scale=10.0, scale_window_min=2.0,
    serving_rounds=7,
)
FULL = Mode(
    full=True, singles=100, bursts=3, burst_size=100, delivery_runs=15, calls_scale=1.0,
    calls_tasks=10, scale_jobs=(20, 2000), scale_time_scale=2.0, scale_window_min=5.0,
    serving_rounds=15,
)


def mode_from_env() -> Mode:
    return FULL if os.environ.get("BENCH_FULL", "") not in ("", "0", "false", "no") else QUICK


# --- results --------------------------------------------------------------------------------


@dataclass
class Figure:
    """One row of the table (and one entry of latest.json)."""

    figure: str  # "1a"
    name: str  # "ack latency"
    workload: str
    result: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None  # None: nothing to judge (an error)
    details: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None  # what limits it, for a miss
    skipped: bool = False  # not measurable on this machine (the limit says why)
    judged: bool = True  # False: a figure reported without a target

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skipped"
        if not self.judged:
            return "reported"
        if self.passed is None:
            return "error"
        return "pass" if self.passed else "MISS"


def error_figure(
    figure: str, name: str, workload: str, target: str, error: BaseException
) -> Figure:
    text = f"{type(error).__name__}: {error}".strip()
    return Figure(
        figure=figure, name=name, workload=workload, result="not measured", baseline="-",
        ratio=None, target=target, passed=None, details={"error": text[:2000]},
        limit=f"the benchmark failed: {text.splitlines()[0][:300] if text else '?'}",
    )


def skipped_figure(figure: str, name: str, workload: str, target: str, why: str) -> Figure:
    return Figure(
        figure=figure, name=name, workload=workload, result=f"skipped: {why}", baseline="-",
        ratio=None, target=target, passed=None, limit=why, skipped=True,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mb(nbytes: float) -> str:
    return f"{nbytes / MB:.1f} MB"


def render_table(figures: Sequence[Figure]) -> str:
    """A plain-text grid; long cells wrap inside their column."""
    headers = ["figure", "workload", "result", "baseline", "ratio", "target", "pass/miss"]
    widths = [6, 38, 28, 24, 7, 26, 9]
    rows = [
        [
            f.figure, f.workload, f.result, f.baseline,
            "-" if f.ratio is None else f"{f.ratio:.2f}", f.target, f.verdict,
        ]
        for f in figures
    ]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def emit(cells: list[str]) -> list[str]:
        wrapped = [textwrap.wrap(c, w) or [""] for c, w in zip(cells, widths, strict=True)]
        height = max(len(x) for x in wrapped)
        return [
            "| " + " | ".join(
                (col[i] if i < len(col) else "").ljust(w)
                for col, w in zip(wrapped, widths, strict=True)
            ) + " |"
            for i in range(height)
        ]

    lines = [rule, *emit(headers), rule.replace("-", "=")]
    for row in rows:
        lines.extend(emit(row))
        lines.append(rule)
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kib = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(ram_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "aiohttp": aiohttp.__version__,
    }


def write_results(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def figure_to_json(figure: Figure) -> dict[str, Any]:
    data = asdict(figure)
    data["verdict"] = figure.verdict
    return data


# --- waiting --------------------------------------------------------------------------------


async def poll_until(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    limit_s: float,
    every_s: float = 0.1,
    *,
    first_wait_s: float = 0.0,
) -> T:
    """Call `check` until it returns something other than None; at most `limit_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    if first_wait_s:
        await asyncio.sleep(first_wait_s)
    for _ in range(int(limit_s / every_s) + 2):
        value = await check()
        if value is not None:
            return value
        if loop.time() >= deadline:
            break
        await asyncio.sleep(every_s)
    raise BenchError(f"timed out after {limit_s:.0f} s waiting for {what}")


# --- media ----------------------------------------------------------------------------------


def make_sized_mp4(path: Path, total_bytes: int, seconds: float = 4.0) -> Path:
    """A real, probe-able mp4 of exactly `total_bytes`: a tiny clip plus one `free` box.

    A top-level `free` box is skipped by every ISO-BMFF reader, so sniffing, probing and
    the simulator's checks see a normal 4 s clip while the transfer moves `total_bytes`.
    """
    clip = make_mp4(path.with_suffix(".head.mp4"), seconds, 64, 64)
    head = clip.read_bytes()
    clip.unlink()
    padding = total_bytes - len(head)
    if padding < 8:
        raise ValueError(f"{total_bytes} bytes is smaller than the clip itself")
    chunk = bytes(1 << 20)
    with path.open("wb") as out:
        out.write(head)
        out.write(struct.pack(">I4s", padding, b"free"))
        remaining = padding - 8
        while remaining > 0:
            step = min(remaining, len(chunk))
            out.write(chunk[:step])
            remaining -= step
    return path


class MediaFiles:
    """Test media generated once per run in the run's temp dir (never committed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def small_clip(self) -> Path:
        return self._get("clip-small.mp4", lambda p: make_mp4(p, 4.0, 64, 64))

    def sized(self, megabytes: int) -> Path:
        return self._get(
            f"clip-{megabytes}mb.mp4", lambda p: make_sized_mp4(p, megabytes * MB)
        )

    def _get(self, name: str, build: Callable[[Path], Path]) -> Path:
        if name not in self._made:
            path = build(self.root / name)
            info = probe_video(path)
            if not 3.0 <= info.duration_s <= 10.0:
                raise BenchError(f"generated {name} lasts {info.duration_s} s")
            self._made[name] = path
        return self._made[name]

    async def asized(self, megabytes: int) -> Path:
        return await asyncio.to_thread(self.sized, megabytes)

    async def asmall_clip(self) -> Path:
        return await asyncio.to_thread(self.small_clip)


# --- the run context ------------------------------------------------------------------------


@dataclass
class Context:
    mode: Mode
    workdir: Path  # removed at the end of the run
    media: MediaFiles
    log: Callable[[str], None]

    def subdir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# --- reading another process ----------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (and friends) of `pid` in bytes, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key.startswith("Vm") and rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs). False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class BotDb:
    """Read-only look at the bot's SQLite database (WAL lets us read while it writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        with contextlib.closing(
            sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        ) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params).fetchall())

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await asyncio.to_thread(self._query, sql, params)

    async def max_job_id(self) -> int:
        rows = await self.query("SELECT COALESCE(MAX(id), 0) AS m FROM jobs")
        return int(rows[0]["m"]) if rows else 0

    async def jobs_after(self, job_id: int) -> list[sqlite3.Row]:
        return await self.query("SELECT * FROM jobs WHERE id > ? ORDER BY id", (job_id,))

    async def job(self, job_id: int) -> sqlite3.Row | None:
        rows = await self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    async def events(self, job_id: int) -> list[sqlite3.Row]:
        return await self.query(
            "SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
        )


FINAL_STATES = ("delivered", "failed", "rejected", "submission_unknown")
INTAKE_STATES = ("received", "fetching", "reserved", "rehosted", "submitting")


# --- the three processes --------------------------------------------------------------------


def quota_env() -> dict[str, str]:
    """Limits high enough that one member can run every benchmark job, and a burst is
    checked at once rather than partly refused as "busy"."""
    big = "100000000"
    return {
        "DEFAULT_DAILY_SECONDS": big, "CEILING_DAILY_SECONDS": big,
        "DEFAULT_MONTHLY_SECONDS": big, "CEILING_MONTHLY_SECONDS": big,
        "DEFAULT_MAX_CONCURRENT": "100000", "CEILING_MAX_CONCURRENT": "100000",
        "DEFAULT_GUILD_MONTHLY_SECONDS": big, "DEFAULT_COOLDOWN_SECONDS": "0",
        "MAX_CONCURRENT_INTAKES": "100000",
    }


class Stack:
    """Discord emulator, EvoLink simulator and bot(s), each its own process.

    The emulator runs with premium tier 3 (100 MiB uploads) and without rate limits, so
    the figures show the bot's own costs rather than Discord's pacing.
    """

    def __init__(
        self, workdir: Path, children: Children, session: aiohttp.ClientSession
    ) -> None:
        self.workdir = workdir
        self.children = children
        self.session = session
        self.info: EmulatorInfo
        self.emu: EmulatorControl
        self.sim: SimulatorControl
        self.sim_url = ""
        self.bot: Child | None = None
        self.web_url: str | None = None  # the bot's own web server (/healthz, /m/...)
        self.db: BotDb | None = None
        self._bots = 0

    async def start_standins(self, channels: Sequence[str] = ("general",)) -> None:
        env = child_env()
        channel_args = [arg for name in channels for arg in ("--channel", name)]
        emulator = await self.children.start(
            "Discord emulator",
            python_module(
                "sandbox.discord_emulator", "--port", "0", "--token", TOKEN, *channel_args,
                "--member", MEMBER, "--premium-tier", "3", "--no-rate-limits",
            ),
            env, "discord-emulator.log",
        )
        simulator = await self.children.start(
            "EvoLink simulator",
            python_module(
                "sandbox.evolink_sim", "--port", "0", "--api-key", API_KEY,
                "--time-scale", "1", "--allow-private-urls", "--credits", "1000000000",
            ),
            env, "evolink-sim.log",
        )
        self.info, self.sim_url = await asyncio.gather(
            emulator.ready_line(parse_emulator_line, READY_LIMIT_S),
            simulator.ready_line(parse_simulator_line, READY_LIMIT_S),
        )
        self.emu = EmulatorControl(self.session, self.info.control)
        self.sim = SimulatorControl(self.session, self.sim_url + "/_sim")

    def channel(self, name: str = "general") -> str:
        return self.info.channels[name]

    @property
    def member(self) -> str:
        return self.info.members[MEMBER]

    # --- bots -------------------------------------------------------------------------------

    def kling_env(self, web_port: int, data_dir: Path, **extra: str) -> dict[str, str]:
        return child_env({
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_BASE": self.info.api_base,
            "DISCORD_GATEWAY_URL": self.info.gateway_url,
            "EVOLINK_BASE_URL": self.sim_url,
            "EVOLINK_API_KEY": API_KEY,
            "EVOLINK_REQUESTS_PER_SECOND": "50",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(web_port),
            "METRICS_PORT": "0",
            "DATA_DIR": str(data_dir),
            "DEV_GUILD_ID": self.info.guild_id,
            "ALLOW_INSECURE_MEDIA_LINKS": "true",
            # Long tasks are first polled after 60 s (the default); short ones soon.
            "POLL_FIRST_MAX_SECONDS": "60",
            "POLL_MIN_INTERVAL_SECONDS": "0.25",
            "POLL_MAX_INTERVAL_SECONDS": "60",
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "false",
            **quota_env(),
            **extra,
        })

    async def start_kling(self, *, timings: Path | None = None, **extra: str) -> Child:
        """`python -m bot run`, exactly as an operator starts it, with a fresh data dir.

        With `timings`, the same bot runs through bench.instrumented_bot, which only adds
        bot-side timestamps of the acknowledgement (see bench/instrument.py).
        """
        self._bots += 1
        data_dir = self.workdir / f"bot-data-{self._bots}"
        port = free_port()
        env = self.kling_env(port, data_dir, **extra)
        self.web_url = f"http://127.0.0.1:{port}"
        self.db = BotDb(data_dir / "kling.sqlite3")
        if timings is None:
            return await self._start_bot("bot", python_module("bot", "run"), env)
        env.update(bench_child_env({"BENCH_TIMINGS": str(timings)}))
        return await self._start_bot("bot", python_module("bench.instrumented_bot"), env)

    async def start_baseline(self, *, timings: Path | None = None) -> Child:
        env = bench_child_env({
            "BASELINE_TOKEN": TOKEN,
            "BASELINE_API_BASE": self.info.api_base,
            "BASELINE_GATEWAY_URL": self.info.gateway_url,
            "BASELINE_GUILD_ID": self.info.guild_id,
            **({"BENCH_TIMINGS": str(timings)} if timings else {}),
        })
        return await self._start_bot(
            "baseline bot", python_module("bench.baseline_bot"), env
        )

    async def _command_syncs(self) -> int:
        calls = await self.emu.rest_calls(
            "PUT", "/applications/{application_id}/guilds/{guild_id}/commands", 200
        )
        return len(calls)

    async def _start_bot(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        if self.bot is not None:
            await self.stop_bot()
        syncs = await self._command_syncs()
        log_name = f"{name.replace(' ', '-')}-{self._bots}.log"
        child = await self.children.start(name, argv, env, log_name)
        self.bot = child

        async def synced() -> bool | None:
            if not child.running:
                raise BenchError(f"the {name} exited early; see {child.log_path}")
            return True if await self._command_syncs() > syncs else None

        await poll_until(synced, f"the {name} to sync its commands", READY_LIMIT_S, 0.1)
        # The gateway connects right after the sync; an older bot's session may still be
        # buffering events, so give the new one a moment before anything is dispatched.
        await asyncio.sleep(1.0)
        return child

    async def stop_bot(self) -> None:
        if self.bot is None:
            return
        bot, self.bot = self.bot, None
        _, _, killed = await bot.stop(10.0)
        if bot in self.children.started:
            self.children.started.remove(bot)
        if killed:
            raise BenchError(f"the {bot.name} did not stop within 10 s of SIGTERM")

    # --- acting as the member -----------------------------------------------------------

    async def upload(self, path: Path) -> str:
        data = await asyncio.to_thread(path.read_bytes)
        att = await self.emu.request(
            "POST", "/attachments",
            params={"filename": path.name, "content_type": "video/mp4"}, data=data,
            timeout=120.0,
        )
        return str(att["id"])

    async def slash(
        self, options: dict[str, Any], *, name: str = "edit", channel: str = "general"
    ) -> dict[str, Any]:
        """Dispatch one slash command; returns the interaction record once it is sent."""
        body = {
            "guild_id": self.info.guild_id, "channel_id": self.channel(channel),
            "user_id": self.member, "name": name, "options": options,
        }
        result: dict[str, Any] = await self.emu.request(
            "POST", "/interactions/slash", json=body, timeout=20.0
        )
        return result

    async def interaction(self, interaction_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.emu.request(
            "GET", f"/interactions/{interaction_id}", timeout=20.0
        )
        return result

    async def wait_acks(
        self, ids: Sequence[str], limit_s: float = 20.0, every_s: float = 0.5
    ) -> list[dict[str, Any]]:
        """Interaction records once each has an answered callback (or failed attempts)."""
        done: dict[str, dict[str, Any]] = {}

        async def check() -> bool | None:
            for ix_id in ids:
                if ix_id in done:
                    continue
                record = await self.interaction(ix_id)
                if record["acknowledged"] or record["attempts"]:
                    done[ix_id] = record
            return True if len(done) == len(ids) else None

        # Not at once: reading records back makes the emulator busy while callbacks arrive.
        await poll_until(
            check, f"{len(ids)} interactions to be acknowledged", limit_s, every_s,
            first_wait_s=every_s,
        )
        return [done[i] for i in ids]

    async def warm_up(self, options: dict[str, Any], count: int = 3) -> None:
        """Send commands until the (new) bot answers `count` of them; excluded from figures."""
        answered = 0
        for _attempt in range(count + 5):
            try:
                ix = await self.slash(options)
            except (ControlError, DemoError):
                await asyncio.sleep(0.5)  # no session yet, or a stale one still buffering
                continue
            try:
                await self.wait_acks([str(ix["id"])], limit_s=5.0, every_s=0.1)
            except BenchError:
                continue
            answered += 1
            if answered >= count:
                return
        raise BenchError("the bot never answered the warm-up commands")

    async def wait_job_state(
        self, job_id: int, states: Sequence[str], limit_s: float, every_s: float = 0.05
    ) -> Any:
        assert self.db is not None
        db = self.db

        async def check() -> Any:
            row = await db.job(job_id)
            if row is not None and row["state"] in states:
                return row
            if row is not None and row["state"] in FINAL_STATES:
                raise BenchError(
                    f"job {job_id} ended {row['state']}: {row['error_message']}"
                )
            return None

        return await poll_until(check, f"job {job_id} to reach {'/'.join(states)}", limit_s,
                                every_s)

    async def new_job_after(self, last_id: int, limit_s: float = 20.0) -> int:
        assert self.db is not None
        db = self.db

        async def check() -> int | None:
            rows = await db.jobs_after(last_id)
            return int(rows[0]["id"]) if rows else None

        return await poll_until(check, "the bot to record a new job", limit_s, 0.05)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def now() -> float:
    return time.time()
