"""Result files: published under unguessable links that die after a TTL (§2.1: 24 h).

A link can also be broken for a while (`ResultOutage`): the CDN in front of the files
answers an error page or resets the connection, then serves the file until its expiry
("worst day: a proxy in front of the service").
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..media_samples import make_mp4
from .clock import SimClock
from .proxy import Window, proxy_error_page, reset_connection
from .script import ResultOutage

_DEFAULT_RESULT_SECONDS = 3.0


@dataclass
class _Published:
    path: Path
    expires_at: float  # provider clock
    outage: ResultOutage | None = None
    window: Window | None = None


class ResultStore:
    def __init__(self, work_dir: Path, clock: SimClock) -> None:
        self._work_dir = work_dir
        self._clock = clock
        self._files: dict[str, _Published] = {}
        self.default_path: Path = work_dir / "default-result.mp4"

    async def prepare(self) -> None:
        """Encode the stock result once per simulator (off the event loop)."""
        if not self.default_path.exists():
            await asyncio.to_thread(
                make_mp4, self.default_path, _DEFAULT_RESULT_SECONDS, color=(30, 120, 200)
            )

    def publish(self, path: Path | None, expires_at: float) -> str:
        """Register a file until `expires_at` (provider clock); return its link name."""
        token = secrets.token_urlsafe(24)  # 192 bits
        self._files[token] = _Published(path or self.default_path, expires_at)
        return f"{token}.mp4"

    def break_link(self, name: str, outage: ResultOutage, start: float | None = None) -> None:
        """Fail the link as `outage` says from `start` (provider clock; default now),
        replacing an earlier outage."""
        entry = self._files[name.removesuffix(".mp4")]
        entry.outage, entry.window = outage, outage.window()
        entry.window.start(self._clock.now() if start is None else start)

    def outages(self) -> dict[str, Any]:
        """Outages still to bite, by link name (for the stats)."""
        now = self._clock.now()
        return {
            f"{token}.mp4": {"status": entry.outage.status, **entry.window.describe()}
            for token, entry in self._files.items()
            if entry.outage is not None and entry.window is not None and not entry.window.over(now)
        }

    def expire(self, name: str) -> None:
        entry = self._files.get(name.removesuffix(".mp4"))
        if entry is not None:
            entry.expires_at = min(entry.expires_at, self._clock.now())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`GET /files/{name}`: 404 for unknown links, 410 once expired."""
        name = request.match_info["name"]
        entry = self._files.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if entry is None or not entry.path.is_file():
            raise web.HTTPNotFound(text="not found")
        now = self._clock.now()
        if now >= entry.expires_at:
            raise web.HTTPGone(text="result link expired")
        if entry.outage is not None and entry.window is not None and entry.window.hit(now):
            status = entry.outage.status
            if isinstance(status, int):
                return proxy_error_page(status)
            return reset_connection(request)
        return web.FileResponse(
            entry.path,
            headers={"Content-Type": "video/mp4", "X-Content-Type-Options": "nosniff"},
        )
