"""The demo's three child processes: start them, read their ready lines, always stop them.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches
only the demo, which then stops the children in order: bot, simulator, emulator. Whatever
goes wrong (a timeout, an exception, a cancellation), `Children.__aexit__` terminates every
child it started and kills the ones that do not exit in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from bot.settings import Settings

T = TypeVar("T")

STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 25


class DemoError(Exception):
    """Something the demo waited for did not happen; the message says what."""


# Set by the test suite for each parallel worker (tests/conftest.py): a block of ports below
# the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768 and up), so
# between a port being found free and its server binding it, neither another worker nor an
# outgoing connection's source port can take it.
PORT_BLOCK_ENV = "KLING_TEST_PORT_BLOCK"


class _PortBlock:
    def __init__(self, spec: str) -> None:
        first, last = (int(part) for part in spec.split("-"))
        self._ports = itertools.cycle(range(first, last + 1))
        self._size = last - first + 1

    def take(self) -> int:
        for port in itertools.islice(self._ports, self._size):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue  # still held by an earlier test's server
                return port
        raise OSError(f"no free port in {PORT_BLOCK_ENV}")


@functools.cache
def _port_block(spec: str) -> _PortBlock:
    return _PortBlock(spec)


def free_port() -> int:
    """A loopback TCP port nothing listens on: the kernel's pick, or the next free one of
    this test worker's block."""
    if spec := os.environ.get(PORT_BLOCK_ENV):
        return _port_block(spec).take()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_names() -> set[str]:
    """Every environment variable the bot's Settings reads."""
    return {field.alias or name for name, field in Settings.model_fields.items()}


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The demo's environment minus anything that could point the bot elsewhere."""
    blocked = settings_names()
    env = {k: v for k, v in os.environ.items() if k not in blocked}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) if tail else "    (empty log)"


class Child:
    """One child process: stdout is read for its ready line, then copied to its log file."""

    def __init__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self._log: Any = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )

    async def ready_line(self, parse: Callable[[str], T | None], timeout: float) -> T:  # noqa: ASYNC109
        """Read stdout until `parse` accepts a line; then keep copying stdout to the log."""
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await stdout.readline()
                    if not raw:
                        code = await self.proc.wait()
                        raise DemoError(
                            f"{self.name} exited with code {code} before it was ready.\n"
                            f"  its log ({self.log_path}):\n{log_tail(self.log_path)}"
                        )
                    self._log.write(raw)
                    self._log.flush()
                    value = parse(raw.decode(errors="replace").strip())
                    if value is not None:
                        break
        except TimeoutError:
            raise DemoError(
                f"{self.name} printed no ready line within {timeout:.0f} s.\n"
                f"  its log ({self.log_path}):\n{log_tail(self.log_path)}"
            ) from None
        self._pump = asyncio.create_task(self._copy_stdout())
        return value

    async def run_to_end(self, timeout: float) -> int:  # noqa: ASYNC109
        """A one-shot command: copy its output to the log until it exits; its exit code."""
        assert self.proc is not None
        self._pump = asyncio.create_task(self._copy_stdout())
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
        except TimeoutError:
            raise DemoError(
                f"{self.name} did not finish within {timeout:.0f} s.\n"
                f"  its log ({self.log_path}):\n{log_tail(self.log_path)}"
            ) from None
        await self._close_streams()
        self.exit_code = code
        return code

    async def _copy_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self._log.write(raw)
            self._log.flush()

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float, bool]:  # noqa: ASYNC109
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns (exit code, seconds, killed)."""
        assert self.proc is not None
        began = time.monotonic()
        killed = False
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                killed = True
                self.kill()
                await self.proc.wait()
        await self._close_streams()
        self.exit_code = self.proc.returncode
        assert self.exit_code is not None
        return self.exit_code, time.monotonic() - began, killed

    def kill(self) -> None:
        """Kill the child's whole process group (it has its own session)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    async def _close_streams(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._pump, 2.0)
            self._pump = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Children:
    """Starts children and guarantees they are all gone when the block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Child] = []
        self.pids: list[int] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all()

    async def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_name: str
    ) -> Child:
        child = Child(
            name, argv, env=env, cwd=self.workdir, log_path=self.workdir / log_name
        )
        self.started.append(child)
        await child.start()
        if child.pid is not None:
            self.pids.append(child.pid)
        return child

    async def stop_all(self) -> None:
        """Newest first (bot before the services it talks to); kill any that hang.

        If stopping is itself interrupted (a second Ctrl-C), every child left is killed.
        """
        pending = [c for c in reversed(self.started) if c.proc is not None]
        self.started.clear()
        for index, child in enumerate(pending):
            try:
                await child.stop()
            except BaseException:
                for other in pending[index:]:
                    other.kill()
                raise


# --- the three children ---------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatorInfo:
    api_base: str
    gateway_url: str
    control: str
    application_id: str
    bot_user_id: str
    guild_id: str
    channels: dict[str, str]
    members: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.control.removesuffix("/_control")


def parse_emulator_line(line: str) -> EmulatorInfo | None:
    if not line.startswith("{"):
        return None
    data = json.loads(line)
    return EmulatorInfo(**{k: data[k] for k in EmulatorInfo.__dataclass_fields__})


SIM_PREFIX = "EvoLink simulator: "


def parse_simulator_line(line: str) -> str | None:
    return line.removeprefix(SIM_PREFIX).strip() if line.startswith(SIM_PREFIX) else None


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
