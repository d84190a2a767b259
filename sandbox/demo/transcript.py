"""A live, readable transcript of what the channel, its threads and the member's screen show.

The watcher long-polls the emulator (`GET /_control/wait?since=`), and after every change
reads the channels, their threads and the interactions. Every message revision is printed
once: a new message in full, an edit as the lines that changed, marked `(edited)`. The
emulator keeps each message's revisions, so an edit is never missed even when several
land between two reads. Ephemeral answers are shown as `[only alice sees]`.

Scenarios wait on the same snapshot (`wait_for`), so a step finishes as soon as the
transcript shows it, and fails with a clear message when it does not happen in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from sandbox.demo.control import EmulatorControl, JsonObj
from sandbox.demo.processes import DemoError

T = TypeVar("T")

EPHEMERAL = 1 << 6
LOADING = 1 << 7
POLL_TIMEOUT_S = 2.0  # re-read at least this often, so liveness checks run


@dataclass
class Snapshot:
    """What the emulator showed at the last read."""

    channels: dict[str, list[JsonObj]] = field(default_factory=dict)  # channel id → messages
    threads: dict[str, JsonObj] = field(default_factory=dict)  # thread id → channel object
    interactions: list[JsonObj] = field(default_factory=list)
    command_syncs: int = 0  # successful guild command syncs (one per bot start)
    version: int = 0

    def messages(self, channel_id: str) -> list[JsonObj]:
        return self.channels.get(channel_id, [])

    def all_messages(self) -> list[JsonObj]:
        return [m for msgs in self.channels.values() for m in msgs]

    def threads_of(self, parent_id: str) -> list[JsonObj]:
        return [t for t in self.threads.values() if t.get("parent_id") == parent_id]

    def interaction(self, interaction_id: str) -> JsonObj | None:
        return next((ix for ix in self.interactions if ix["id"] == interaction_id), None)

    def final_answer(self, interaction_id: str) -> JsonObj | None:
        """The first response that is no longer a "thinking" placeholder."""
        ix = self.interaction(interaction_id)
        if ix is None:
            return None
        return next((r for r in ix["responses"] if not r["loading"]), None)


class Transcript:
    def __init__(
        self,
        control: EmulatorControl,
        *,
        text_channels: dict[str, str],
        users: dict[str, str],
        out: TextIO,
        started: float,
    ) -> None:
        self.control = control
        self.text_channels = text_channels  # id → name
        self.users = users  # id → name
        self.out = out
        self.started = started
        self.snapshot = Snapshot()
        self.checks: list[Callable[[], str | None]] = []  # each returns a failure, or None
        self._printed: dict[str, int] = {}  # message id → revisions printed
        self._seen_threads: set[str] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            # The emulator keeps serving our abandoned long-poll until it times out, which
            # would hold up its shutdown: a zero clock step is a change that ends it now.
            with contextlib.suppress(DemoError):
                await self.control.request("POST", "/clock/advance", json={"seconds": 0})

    async def _watch(self) -> None:
        try:
            version = -1
            while True:
                version = await self.control.wait(version, POLL_TIMEOUT_S)
                await self.refresh()
        except Exception as error:  # surfaced by the next wait_for
            self._error = error
            self._changed.set()

    async def refresh(self) -> None:
        """Read everything the transcript shows, print what is new, wake the waiters."""
        snap = Snapshot(version=self.snapshot.version)
        # A copy: a scenario may add channels to watch while this reads them.
        for channel_id in list(self.text_channels):
            snap.channels[channel_id] = await self.control.messages(channel_id)
            for thread in await self.control.threads(channel_id):
                snap.threads[thread["id"]] = thread
        for thread_id in snap.threads:
            snap.channels[thread_id] = await self.control.messages(thread_id)
        snap.interactions = await self.control.interactions()
        syncs = await self.control.rest_calls(
            "PUT", "/applications/{application_id}/guilds/{guild_id}/commands", 200
        )
        snap.command_syncs = len(syncs)
        self.snapshot = snap
        self._print_new(snap)
        self._changed.set()

    # --- waiting --------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[Snapshot], T | None],
        what: str,
        timeout: float,  # noqa: ASYNC109
    ) -> T:
        """Wait until `predicate(snapshot)` is truthy; DemoError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            if self._error is not None:
                raise DemoError(f"the transcript stopped: {self._error}") from self._error
            for check in self.checks:
                failure = check()
                if failure:
                    raise DemoError(f"{failure} (while waiting for {what})")
            value = predicate(self.snapshot)
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, POLL_TIMEOUT_S))

    # --- printing -------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, text: str) -> None:
        self.out.write(f"{self.elapsed():6.2f}s  {text}\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A line from the demo itself (not something Discord shows)."""
        self.line(f"· {text}")

    def _where(self, message: JsonObj) -> str:
        channel_id = message["channel_id"]
        if channel_id in self.snapshot.threads:
            return f"[🧵 {self.snapshot.threads[channel_id]['name']}]"
        return f"[#{self.text_channels.get(channel_id, channel_id)}]"

    def _print_new(self, snap: Snapshot) -> None:
        for thread_id, thread in snap.threads.items():
            if thread_id not in self._seen_threads:
                self._seen_threads.add(thread_id)
                parent = self.text_channels.get(thread.get("parent_id", ""), "?")
                self.line(f"[#{parent}] 🧵 thread created: “{thread['name']}”")
        shown: list[JsonObj] = []
        for message in snap.all_messages():
            shown.append(message)
        for ix in snap.interactions:
            shown.extend(r for r in ix["responses"] if r.get("ephemeral"))
        # Print in the order things happened, across channels.
        events: list[tuple[str, int, JsonObj]] = []
        for message in shown:
            done = self._printed.get(message["id"], 0)
            for index, revision in enumerate(message["history"][done:], start=done):
                events.append((revision["at"], index, message))
        events.sort(key=lambda e: (e[0], e[1]))
        for _, index, message in events:
            if self._printed.get(message["id"], 0) != index:
                continue  # already printed through another listing
            self._print_revision(message, index)
            self._printed[message["id"]] = index + 1

    def _print_revision(self, message: JsonObj, index: int) -> None:
        revision = message["history"][index]
        author = message["author"]["username"]
        if message.get("ephemeral"):
            who = self.users.get(message.get("visible_to") or "", "the member")
            where = f"[only {who} sees]"
        else:
            where = self._where(message)
        if revision["flags"] & LOADING:
            self.line(f"{where} {author} is thinking… (the command was deferred)")
            return
        lines = self.render_lines(revision["content"])
        if index == 0:
            body = " · ".join(lines)
            label = f"{author}:"
        else:
            before = self.render_lines(message["history"][index - 1]["content"])
            changed = [ln for ln in lines if ln not in before]
            if message["history"][index - 1]["flags"] & LOADING:
                changed, label = lines, f"{author}:"
            else:
                label = f"{author} (edited):"
            body = " · ".join(changed) if changed else "(no visible change)"
        extras = self._attachments(message, revision) + self._buttons(revision)
        self.line(" ".join(part for part in (where, label, body, *extras) if part))

    def _attachments(self, message: JsonObj, revision: JsonObj) -> list[str]:
        wanted = {str(a) for a in revision.get("attachment_ids", [])}
        return [
            f"📎 {a['filename']} ({human_bytes(int(a['size']))})"
            for a in message.get("attachments", [])
            if a["id"] in wanted
        ]

    @staticmethod
    def _buttons(revision: JsonObj) -> list[str]:
        labels = []
        for row in revision.get("components", []):
            for item in row.get("components", []):
                if item.get("type") == 2:
                    emoji = (item.get("emoji") or {}).get("name") or ""
                    labels.append(f"[{emoji}{' ' if emoji else ''}{item.get('label', '')}]")
        return labels

    # --- Discord markup → plain text ------------------------------------------------------

    def render_lines(self, content: str) -> list[str]:
        lines = []
        for raw in content.splitlines():
            text = raw.strip()
            for prefix in ("-# ", "> "):
                text = text.removeprefix(prefix)
            text = text.replace("**", "").replace("\\", "")
            text = _MENTION.sub(self._mention, text)
            text = _TIMESTAMP.sub(_timestamp, text)
            if text:
                lines.append(text)
        return lines

    def _mention(self, match: re.Match[str]) -> str:
        kind, ident = match.group(1), match.group(2)
        if kind == "#":
            thread = self.snapshot.threads.get(ident)
            if thread is not None:
                return f"🧵“{thread['name']}”"
            return f"#{self.text_channels.get(ident, ident)}"
        return f"@{self.users.get(ident, ident)}"


_MENTION = re.compile(r"<(@!?|#)(\d+)>")
_TIMESTAMP = re.compile(r"<t:(\d+)(?::([tTdDfFR]))?>")


def _timestamp(match: re.Match[str]) -> str:
    at = int(match.group(1))
    if match.group(2) == "R":
        delta = at - time.time()
        span = abs(delta)
        if span < 90:
            amount = f"{span:.0f} s"
        elif span < 5400:
            amount = f"{span / 60:.0f} min"
        elif span < 2 * 86400:
            amount = f"{span / 3600:.0f} h"
        else:
            amount = f"{span / 86400:.0f} days"
        return f"in {amount}" if delta >= 0 else f"{amount} ago"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_bytes(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def describe_options(options: dict[str, Any], filenames: dict[str, str]) -> str:
    """`/edit prompt:"…" video:clip.mp4` as a member would have typed it."""
    parts = []
    for name, value in options.items():
        shown = filenames.get(str(value), str(value))
        parts.append(f'{name}:"{shown}"' if " " in shown else f"{name}:{shown}")
    return " ".join(parts)
