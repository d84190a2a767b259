"""Result files: published under unguessable links that die after a TTL (§2.1: 24 h)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..media_samples import make_mp4
from .clock import SimClock

_DEFAULT_RESULT_SECONDS = 3.0


@dataclass
class _Published:
    path: Path
    expires_at: float  # provider clock


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
        if self._clock.now() >= entry.expires_at:
            raise web.HTTPGone(text="result link expired")
        return web.FileResponse(
            entry.path,
            headers={"Content-Type": "video/mp4", "X-Content-Type-Options": "nosniff"},
        )
