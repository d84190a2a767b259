"""The real engine, its database (SQLite, or a schema of its own on PostgreSQL) and web app
against the EvoLink simulator, all over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from bot.evolink import RateLimiter
from bot.jobs.config import EngineConfig, ScheduleConfig
from bot.jobs.models import EditRequest, InputFile
from bot.media.prober import Prober
from bot.services import Services
from bot.settings import Settings
from sandbox.demo.processes import free_port
from sandbox.evolink_sim import EvolinkSimulator
from sandbox.media_samples import make_mp4, make_png
from storage.models import Job
from tests.conftest import DatabaseLocation
from tests.doubles import RecordingNotifier

API_KEY = "sk-evo-test"
FAST_SCHEDULE = ScheduleConfig(
    first_poll_max_s=0.05, min_interval_s=0.02, max_interval_s=0.1, retry_base_s=0.02,
    retry_max_s=0.2, lease_s=5.0,
)


class HeldRequests:
    """While set on a FileHost, every request is counted, then waits until `release()`:
    downloads held open for as long as a test needs, without sleeping."""

    def __init__(self) -> None:
        self._released = asyncio.Event()
        self._arrived = 0
        self._changed = asyncio.Condition()

    async def hold(self) -> None:
        async with self._changed:
            self._arrived += 1
            self._changed.notify_all()
        await self._released.wait()

    async def until_waiting(self, count: int) -> None:
        """Return once `count` requests have arrived."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._arrived >= count)

    def release(self) -> None:
        self._released.set()


class FileHost:
    """Stands in for Discord's attachment CDN: serves test files by name."""

    def __init__(self, root: Path, tls: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.tls = tls  # serve https (a member's link must be), with this certificate
        self.origin = self.base_url = ""
        self.requests: list[str] = []
        self.held: HeldRequests | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            self.requests.append(name)
            if self.held is not None:
                await self.held.hold()
            path = self.root / name
            if "/" in name or not path.is_file():
                raise web.HTTPNotFound()
            return web.FileResponse(path)

        app = web.Application()
        app.router.add_get("/attachments/{name}", serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = self._runner.addresses[0][1]
        self.origin = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self.base_url = f"{self.origin}/attachments"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def clip(self, name: str = "clip.mp4", seconds: float = 4.0, **kwargs: object) -> str:
        make_mp4(self.root / name, seconds, **kwargs)  # type: ignore[arg-type]
        return self.url(name)

    def image(self, name: str = "ref.png", width: int = 320, height: int = 320) -> str:
        make_png(self.root / name, width, height)
        return self.url(name)


class Harness:
    def __init__(
        self, tmp_path: Path, sim: EvolinkSimulator, files: FileHost, prober: Prober | None,
        database: DatabaseLocation | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.database = database  # None: SQLite in DATA_DIR, as an operator's default
        self.prober = prober  # None: the services start their own pool
        self.sim = sim
        self.files = files
        self.port = free_port()
        self.notifier = RecordingNotifier()
        self.callbacks = False
        self.clock: Callable[[], float] = time.time  # the bot's clock (not the simulator's)
        self.services: Services | None = None
        self._running: contextlib.AsyncExitStack | None = None

    @property
    def public_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: str) -> Settings:
        env = {
            "DATA_DIR": str(self.tmp_path / "data"),
            "PUBLIC_BASE_URL": self.public_base_url,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            "METRICS_PORT": "0",
            "EVOLINK_BASE_URL": self.sim.base_url,
            "EVOLINK_API_KEY": API_KEY,
            "EVOLINK_REQUESTS_PER_SECOND": "200",
            "DEFAULT_COOLDOWN_SECONDS": "0",
            # Attachments come from the Discord stand-in's host, like the emulator's; results
            # from the simulator on loopback.
            "DISCORD_API_BASE": f"{self.files.origin}/api/v10",
            "ALLOW_INSECURE_MEDIA_LINKS": "true",
            **(self.database.bot_settings() if self.database else {}),
            **overrides,
        }
        return Settings(_env_file=None, **env)  # type: ignore[call-arg]

    async def start(
        self, limiter: RateLimiter | None = None, *, schedule: ScheduleConfig = FAST_SCHEDULE,
        **overrides: str,
    ) -> Services:
        settings = self.settings(**overrides)
        config = dataclasses.replace(
            EngineConfig.from_settings(settings),
            schedule=schedule,
            # The simulator accepts loopback callbacks when started insecure; real EvoLink won't.
            callback_base_url=self.public_base_url if self.callbacks else None,
        )
        running = contextlib.AsyncExitStack()
        self.services = await running.enter_async_context(
            Services.running(
                settings, self.notifier, config=config, clock=self.clock, limiter=limiter,
                prober=self.prober,
            )
        )
        self._running = running
        return self.services

    async def stop(self) -> None:
        if self._running is not None:
            running, self._running, self.services = self._running, None, None
            await running.aclose()

    @property
    def live(self) -> Services:
        assert self.services is not None
        return self.services

    def request(self, video_url: str, *, user_id: int = 7, images: list[str] | None = None,
                prompt: str = "make it snow") -> EditRequest:
        return EditRequest(
            guild_id=1, channel_id=2, user_id=user_id, prompt=prompt,
            video=InputFile(url=video_url), images=[InputFile(url=u) for u in images or []],
        )

    async def job(self, job_id: int) -> Job:
        job = await self.live.jobs.get(job_id)
        assert job is not None
        return job


@asynccontextmanager
async def running_harness(
    tmp_path: Path, *, time_scale: float = 200.0, prober: Prober | None = None,
    database: DatabaseLocation | None = None,
) -> AsyncIterator[Harness]:
    files = FileHost(tmp_path / "cdn")
    files.root.mkdir()
    await files.start()
    sim = EvolinkSimulator(
        api_key=API_KEY, time_scale=time_scale, allow_private_urls=True,
        allow_insecure_callbacks=True, callback_retry_delays=(0.01, 0.02, 0.04),
    )
    await sim.start()
    harness = Harness(tmp_path, sim, files, prober, database)
    try:
        yield harness
    finally:
        await harness.stop()
        await sim.stop()
        await files.stop()
