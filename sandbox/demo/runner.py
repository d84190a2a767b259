"""`run_demo`: header, the three processes, one scenario, a clean shutdown, a footer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import aiohttp

from sandbox.demo.processes import Children, DemoError
from sandbox.demo.scenarios import SCENARIOS
from sandbox.demo.session import TIME_SCALE, Demo

SCENARIO_TIMEOUT_S = 120.0
DEFAULT_OUT_DIR = Path("demo-out")


@dataclass
class DemoResult:
    scenario: str
    saved: list[Path] = field(default_factory=list)
    child_pids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    workdir: Path | None = None  # kept only when the run failed


async def run_demo(
    scenario: str = "happy",
    out_dir: Path = DEFAULT_OUT_DIR,
    *,
    out: TextIO | None = None,
    result: DemoResult | None = None,
    keep_workdir: bool = False,
    workdir_parent: Path | None = None,
) -> DemoResult:
    """Run one scenario end to end. Raises DemoError (after cleaning up) if a step fails.

    Pass `result` to read the child pids even when the run raises.
    """
    stream = out or sys.stdout
    if scenario not in SCENARIOS:
        raise DemoError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    spec = SCENARIOS[scenario]
    if spec.refusal is not None and (why := await spec.refusal()):
        raise DemoError(f"scenario “{scenario}” cannot run here: {why}")
    result = result or DemoResult(scenario)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="kling-demo-", dir=workdir_parent))
    _header(stream, spec.name, spec.title, spec.story, workdir)
    ok = False
    demo: Demo | None = None
    try:
        async with aiohttp.ClientSession() as session, Children(workdir) as children:
            demo = Demo(
                children=children, session=session, workdir=workdir, out_dir=out_dir,
                out=stream, started=started, bot_env=spec.bot_env,
            )
            try:
                await demo.setup()
                stream.write("\n── what the channel, its threads and alice's screen show ──\n")
                async with asyncio.timeout(SCENARIO_TIMEOUT_S):
                    await spec.run(demo)
                stream.write("\n")
                shutdown = await demo.shutdown()
            finally:
                result.child_pids = list(children.pids)
                transcript = getattr(demo, "transcript", None)
                if transcript is not None:
                    await transcript.stop()
        ok = True
    except TimeoutError:
        raise DemoError(f"the scenario took longer than {SCENARIO_TIMEOUT_S:.0f} s") from None
    except DemoError as error:
        if demo is not None:
            error.add_note(demo.log_tails())
        raise
    finally:
        if ok and not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            result.workdir = workdir
            stream.write(f"\nLogs and data were kept in {workdir}\n")
    assert demo is not None
    result.saved = list(demo.saved)
    result.timings = dict(demo.timings.marks)
    result.timings["total"] = time.monotonic() - started
    _footer(stream, demo, shutdown, result)
    return result


def _header(stream: TextIO, name: str, title: str, story: str, workdir: Path) -> None:
    wrap = textwrap.TextWrapper(width=92, initial_indent="  ", subsequent_indent="  ")
    stream.write(
        f"kling-edit-bot demo · scenario “{name}”: {title}\n"
        + wrap.fill(
            "The real bot runs as its own process against a local Discord emulator and a local "
            "EvoLink simulator, also separate processes, all on 127.0.0.1: nothing leaves this "
            f"machine. The simulator runs {TIME_SCALE:g}× faster than real time, so the ETAs "
            "in Discord are provider time."
        )
        + "\n"
        + wrap.fill(story)
        + f"\n  Work dir (logs, database; removed unless the run fails): {workdir}\n\n"
    )
    stream.flush()


def _footer(stream: TextIO, demo: Demo, shutdown: list[str], result: DemoResult) -> None:
    stream.write("Shutdown: " + "; ".join(shutdown) + "\n")
    marks = result.timings
    order = ("stand-ins ready", "bot ready", "/edit answered", "delivered")
    parts = [f"{name} {marks[name]:.1f} s" for name in order if name in marks]
    parts.append(f"total {marks['total']:.1f} s")
    stream.write("Timings (since start): " + " · ".join(parts) + "\n")
    if demo.jobs:
        described = [
            f"#{job_id} {state}" + (f" (billed {billed} s)" if state == "delivered" else "")
            for job_id, state, billed in demo.jobs
        ]
        stream.write("The bot's database after shutdown: " + ", ".join(described) + "\n")
    for path in result.saved:
        stream.write(f"Delivered video: {path} ({path.stat().st_size:,} bytes)\n")
    stream.write(f"Scenario “{result.scenario}” passed.\n")
    stream.flush()


def main(scenario: str | None = None, out_dir: Path | None = None) -> int:
    """`python -m bot demo`: exit 0 when the scenario passed, 1 when a step failed."""
    chosen = scenario or os.environ.get("DEMO_SCENARIO") or "happy"
    if chosen not in SCENARIOS:
        print(
            f"Unknown DEMO_SCENARIO {chosen!r}; choose one of: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    target = out_dir or Path(os.environ.get("DEMO_OUT_DIR") or DEFAULT_OUT_DIR)

    async def guarded() -> DemoResult:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # either one: clean up, then exit 130
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        keep = os.environ.get("DEMO_KEEP_WORKDIR", "") not in ("", "0", "false")
        return await run_demo(chosen, target, keep_workdir=keep)

    try:
        asyncio.run(guarded())
    except DemoError as error:
        sys.stdout.flush()
        notes = "\n".join(getattr(error, "__notes__", []))
        print(f"\nDemo failed: {error}\n{notes}".rstrip(), file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nDemo interrupted; every process it started has been stopped.", file=sys.stderr)
        return 130
    return 0
