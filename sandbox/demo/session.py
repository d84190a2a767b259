"""One demo run: the three processes, the member's actions, and the checks along the way."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from sandbox.demo.control import ControlError, EmulatorControl, JsonObj, SimulatorControl
from sandbox.demo.processes import (
    Child,
    Children,
    DemoError,
    EmulatorInfo,
    child_env,
    free_port,
    log_tail,
    parse_emulator_line,
    parse_simulator_line,
    python_module,
)
from sandbox.demo.transcript import Snapshot, Transcript, describe_options, human_bytes
from sandbox.media_samples import make_mp4, make_png, probe_video

TOKEN = "demo-token"
API_KEY = "sk-evo-demo"
MEMBER = "alice"
CHANNEL = "general"
TIME_SCALE = 20.0  # provider seconds per real second
# A default task takes 80 provider seconds: 4 real seconds, long enough to watch the bar move.
DEFAULT_PROCESSING_S = 80.0

READY_TIMEOUT_S = 15.0
BOT_READY_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 15.0
DELIVERY_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 10.0

_JOB_STARTED = re.compile(r"Edit #(\d+) started")
_PERCENT = re.compile(r"(\d+)%")


def bot_command() -> list[str]:
    """The bot exactly as an operator starts it."""
    return python_module("bot", "run")


@dataclass
class Samples:
    clip: Path
    image: Path


@dataclass
class Timings:
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, at: float) -> None:
        self.marks.setdefault(name, at)


class Demo:
    """Everything a scenario needs; built by `run_demo`, torn down by it too."""

    def __init__(
        self,
        *,
        children: Children,
        session: aiohttp.ClientSession,
        workdir: Path,
        out_dir: Path,
        out: TextIO,
        started: float,
        bot_env: dict[str, str],
        members: tuple[str, ...] = (MEMBER,),
    ) -> None:
        self.children = children
        self.session = session
        self.workdir = workdir
        self.out_dir = out_dir
        self.out = out
        self.started = started
        self.extra_bot_env = bot_env
        # The demo acts as MEMBER; tests that need more members (e.g. one per attempt, so
        # no per-member limit carries over between cases) name them all, MEMBER first.
        self.members = members
        self.timings = Timings()
        self.saved: list[Path] = []
        self._filenames: dict[str, str] = {}  # attachment id → name, for the transcript
        self.jobs: list[tuple[int, str, int | None]] = []
        self.bot: Child | None = None
        self.bot_starts = 0
        self._bot_stopping = False
        self.info: EmulatorInfo
        self.emu: EmulatorControl
        self.sim: SimulatorControl
        self.sim_url = ""
        self.transcript: Transcript
        self.samples: Samples
        self.web_port = free_port()
        self.metrics_port = free_port()  # /metrics and /livez, beside the public listener

    # --- output ---------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def mark(self, name: str) -> None:
        self.timings.mark(name, self.elapsed())

    # --- setup ----------------------------------------------------------------------------

    async def setup(self) -> None:
        self.samples = await asyncio.to_thread(self._make_samples)
        clip = probe_video(self.samples.clip)
        self.say(
            f"[setup] generated {self.samples.clip.name} ({clip.duration_s:.1f} s, "
            f"{clip.width}×{clip.height}, {human_bytes(self.samples.clip.stat().st_size)}) and "
            f"{self.samples.image.name} (400×300)"
        )
        env = child_env()
        emulator = await self.children.start(
            "the Discord emulator",
            python_module(
                "sandbox.discord_emulator", "--port", "0", "--token", TOKEN,
                "--channel", CHANNEL, *(arg for m in self.members for arg in ("--member", m)),
            ),
            env, "discord-emulator.log",
        )
        simulator = await self.children.start(
            "the EvoLink simulator",
            python_module(
                "sandbox.evolink_sim", "--port", "0", "--api-key", API_KEY,
                "--time-scale", str(TIME_SCALE), "--allow-private-urls",
            ),
            env, "evolink-sim.log",
        )
        self.info, self.sim_url = await asyncio.gather(
            emulator.ready_line(parse_emulator_line, READY_TIMEOUT_S),
            simulator.ready_line(parse_simulator_line, READY_TIMEOUT_S),
        )
        self.emu = EmulatorControl(self.session, self.info.control)
        self.sim = SimulatorControl(self.session, self.sim_url + "/_sim")
        await self.sim.default_script(
            processing_s=DEFAULT_PROCESSING_S, estimated_time=int(DEFAULT_PROCESSING_S)
        )
        self.say(
            f"[setup] Discord emulator ready at {self.info.base_url} (pid {emulator.pid}): "
            f"guild “Demo Guild”, #{CHANNEL}, member {MEMBER}"
        )
        self.say(
            f"[setup] EvoLink simulator ready at {self.sim_url} (pid {simulator.pid}), "
            f"running {TIME_SCALE:g}× faster than real time"
        )
        self.mark("stand-ins ready")
        users = {v: k for k, v in self.info.members.items()}
        users[self.info.bot_user_id] = "Kling"
        self.transcript = Transcript(
            self.emu,
            text_channels={v: k for k, v in self.info.channels.items()},
            users=users, out=self.out, started=self.started,
        )
        self.transcript.checks.append(self._bot_alive)
        self.transcript.start()

    def _make_samples(self) -> Samples:
        return Samples(
            clip=make_mp4(self.workdir / "clip.mp4", 4, 320, 180, with_audio=True),
            image=make_png(self.workdir / "reference.png", 400, 300, color=(230, 230, 250)),
        )

    # --- the bot --------------------------------------------------------------------------

    def bot_environment(self) -> dict[str, str]:
        return child_env({
            "DISCORD_TOKEN": TOKEN,
            "DISCORD_API_BASE": self.info.api_base,
            "DISCORD_GATEWAY_URL": self.info.gateway_url,
            "EVOLINK_BASE_URL": self.sim_url,
            "EVOLINK_API_KEY": API_KEY,
            "EVOLINK_REQUESTS_PER_SECOND": "50",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.web_port),
            "METRICS_PORT": str(self.metrics_port),
            "DATA_DIR": str(self.workdir / "data"),
            "DEV_GUILD_ID": self.info.guild_id,
            "ALLOW_INSECURE_MEDIA_LINKS": "true",
            # Discord allows 5 message edits per 5 s per channel: one a second stays clear.
            "STATUS_EDIT_INTERVAL_SECONDS": "1.0",
            "POLL_FIRST_MAX_SECONDS": "0.5",
            "POLL_MIN_INTERVAL_SECONDS": "0.25",
            "POLL_MAX_INTERVAL_SECONDS": "0.5",
            "DEFAULT_COOLDOWN_SECONDS": "0",
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "false",
            **self.extra_bot_env,
        })

    def _bot_alive(self) -> str | None:
        bot = self.bot
        if bot is None or self._bot_stopping or bot.running:
            return None
        code = bot.proc.returncode if bot.proc is not None else None
        return f"the bot exited unexpectedly with code {code}"

    async def start_bot(self) -> Child:
        argv = bot_command()
        began = self.elapsed()
        self.bot = await self.children.start(
            "the bot", argv, self.bot_environment(), "bot.log"
        )
        self.bot_starts += 1
        shown = " ".join(["python", *argv[1:]])
        self.transcript.note(f"bot process started (pid {self.bot.pid}): {shown}")
        wanted = self.bot_starts
        await self.transcript.wait_for(
            lambda s: s.command_syncs >= wanted,
            "the bot to log in and sync its slash commands to the guild", BOT_READY_TIMEOUT_S,
        )
        self.transcript.note(
            f"bot logged in and synced /edit, /jobs, /quota ({self.elapsed() - began:.1f} s)"
        )
        self.mark("bot ready")
        return self.bot

    async def stop_bot(self) -> float:
        """SIGTERM the bot; it must exit 0 within STOP_TIMEOUT_S. Returns the seconds taken."""
        bot = self.bot
        if bot is None:
            return 0.0
        self._bot_stopping = True
        code, seconds, killed = await bot.stop(STOP_TIMEOUT_S)
        self.bot = None
        self._bot_stopping = False
        if killed:
            raise DemoError(
                f"the bot did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM and was killed"
            )
        if code != 0:
            raise DemoError(f"the bot exited with code {code} on SIGTERM (expected 0)")
        self.transcript.note(f"bot exited cleanly on SIGTERM (code 0, {seconds:.2f} s)")
        return seconds

    # --- acting as the member -------------------------------------------------------------

    async def upload_samples(self) -> tuple[str, str]:
        clip = await self.emu.upload(
            self.samples.clip.name, self.samples.clip.read_bytes(), "video/mp4"
        )
        image = await self.emu.upload(
            self.samples.image.name, self.samples.image.read_bytes(), "image/png"
        )
        self._filenames.update(
            {clip["id"]: clip["filename"], image["id"]: image["filename"]}
        )
        return str(clip["id"]), str(image["id"])

    async def command(self, name: str, options: dict[str, Any] | None = None) -> str:
        """Run a slash command as the member; returns the interaction id."""
        options = options or {}
        shown = describe_options(options, self._filenames)
        self.transcript.line(f"[#{CHANNEL}] {MEMBER} runs /{name} {shown}".rstrip())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_TIMEOUT_S
        while True:
            try:
                ix = await self.emu.slash(
                    self.info.guild_id, self.info.channels[CHANNEL], self.info.members[MEMBER],
                    name, options,
                )
                return str(ix["id"])
            except ControlError as error:
                # Commands are synced before the gateway connects: wait for the session.
                if "no gateway session" not in str(error.body) or loop.time() > deadline:
                    raise
                await self.emu.wait(self.transcript.snapshot.version, 1.0)

    async def answer(self, interaction_id: str, what: str) -> str:
        """The member's (ephemeral) answer to a command, once it is more than "thinking"."""
        message = await self.transcript.wait_for(
            lambda s: s.final_answer(interaction_id), what, ANSWER_TIMEOUT_S
        )
        return str(message["content"])

    async def edit(self, prompt: str, *, with_image: bool = True) -> tuple[str, str]:
        """/edit with the sample clip (and reference image); returns (interaction id, answer)."""
        clip, image = await self.upload_samples()
        options: dict[str, Any] = {"prompt": prompt, "video": clip}
        if with_image:
            options["image1"] = image
        ix = await self.command("edit", options)
        text = await self.answer(ix, "the bot's answer to /edit")
        self.mark("/edit answered")
        return ix, text

    # --- reading the channel --------------------------------------------------------------

    @staticmethod
    def job_id(answer: str) -> int:
        found = _JOB_STARTED.search(answer)
        if found is None:
            raise DemoError(f"/edit was not accepted; the bot answered: {answer!r}")
        return int(found.group(1))

    def status_message(
        self, snap: Snapshot, job_id: int, channel_id: str | None = None
    ) -> JsonObj | None:
        """The job's status message in `channel_id` (the demo's #general unless given)."""
        return next(
            (
                m for m in snap.messages(channel_id or self.info.channels[CHANNEL])
                if m["author"]["id"] == self.info.bot_user_id
                and f"Kling edit #{job_id}**" in m["content"]
            ),
            None,
        )

    async def thread_of(self, job_id: int, channel_id: str | None = None) -> str:
        def find(snap: Snapshot) -> str | None:
            status = self.status_message(snap, job_id, channel_id)
            if status is not None and status.get("thread"):
                return str(status["thread"]["id"])
            return None

        return await self.transcript.wait_for(
            find, f"the status message and thread of edit #{job_id}", ANSWER_TIMEOUT_S
        )

    async def progress_at_least(self, job_id: int, percent: int) -> int:
        def check(snap: Snapshot) -> int | None:
            status = self.status_message(snap, job_id)
            found = _PERCENT.search(status["content"]) if status else None
            value = int(found.group(1)) if found else -1
            return value if value >= percent else None

        return await self.transcript.wait_for(
            check, f"edit #{job_id} to reach {percent}%", DELIVERY_TIMEOUT_S
        )

    async def delivery(self, job_id: int, thread_id: str) -> JsonObj:
        def find(snap: Snapshot) -> JsonObj | None:
            return next(
                (
                    m for m in snap.messages(thread_id)
                    if m["attachments"] and f"edit #{job_id} is ready" in m["content"]
                ),
                None,
            )

        message = await self.transcript.wait_for(
            find, f"edit #{job_id} to be delivered in its thread", DELIVERY_TIMEOUT_S
        )
        self.mark("delivered")
        return message

    async def finished(self, job_id: int, label: str = "Done") -> None:
        """The status message's final edit, and the bot's own record of the outcome.

        Stopping the bot before it has recorded a delivery would make the next start post
        the video again, so the demo waits for the bot to log it (its log is ours to read).
        """
        await self.transcript.wait_for(
            lambda s: (m := self.status_message(s, job_id)) is not None
            and f"**{label}**" in m["content"],
            f"the status message of edit #{job_id} to say {label}", ANSWER_TIMEOUT_S,
        )
        if label == "Done":
            await self.bot_logged(f"job delivered job={job_id} ")

    async def bot_logged(self, text: str, timeout: float = ANSWER_TIMEOUT_S) -> None:  # noqa: ASYNC109
        path = self.workdir / "bot.log"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in await asyncio.to_thread(path.read_text, errors="replace"):
            failure = self._bot_alive()
            if failure:
                raise DemoError(failure)
            if loop.time() > deadline:
                raise DemoError(f"the bot did not log {text.strip()!r} within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def job_rows(self) -> list[tuple[int, str, int | None]]:
        """The bot's own records, read after it stopped (read-only)."""
        path = self.workdir / "data" / "kling.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT id, state, billed_seconds FROM jobs ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1]), r[2]) for r in rows]

    async def save(self, message: JsonObj) -> Path:
        attachment = message["attachments"][0]
        url = str(attachment["url"])
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise DemoError(f"refusing to download a non-loopback attachment URL: {url}")
        data = await self.emu.download(url)
        name = Path(str(attachment["filename"])).name or "kling-edit.mp4"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / name
        await asyncio.to_thread(path.write_bytes, data)
        try:
            info = await asyncio.to_thread(probe_video, path)
        except Exception as error:
            raise DemoError(f"the delivered file {path} is not a video: {error}") from error
        self.saved.append(path)
        self.transcript.note(
            f"saved the delivered video to {path} ({len(data):,} bytes; "
            f"{info.duration_s:.1f} s, {info.width}×{info.height} "
            f"{'mp4' if 'mp4' in info.format_name else info.format_name})"
        )
        return path

    # --- shutdown -------------------------------------------------------------------------

    async def shutdown(self) -> list[str]:
        """Bot first (it must exit cleanly), then the stand-ins. Returns one line per child."""
        lines = []
        if self.bot is not None:
            seconds = await self.stop_bot()
            lines.append(f"bot: exit 0 after SIGTERM in {seconds:.2f} s")
        if (self.workdir / "data" / "kling.sqlite3").exists():
            self.jobs = await asyncio.to_thread(self.job_rows)
        await self.transcript.refresh()
        await self.transcript.stop()
        # Idle keep-alive connections would hold up the emulator's shutdown.
        await self.session.close()
        for child in reversed(list(self.children.started)):
            if child.exit_code is not None:
                continue  # a bot stopped earlier (the restart scenario)
            code, seconds, killed = await child.stop(STOP_TIMEOUT_S)
            state = "killed after the timeout" if killed else f"exit {code}"
            lines.append(f"{child.name}: {state} after SIGTERM in {seconds:.2f} s")
        self.children.started.clear()
        return lines

    def log_tails(self) -> str:
        parts = []
        for name in ("bot.log", "evolink-sim.log", "discord-emulator.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"  last lines of {path}:\n{log_tail(path, 15)}")
        return "\n".join(parts)
