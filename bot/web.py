"""The bot's aiohttp apps: the public one (rehosted media, provider callbacks, readiness) and
a separate operators' one (metrics, liveness), which listens on its own (loopback by default)
address: the public listener serves only `/m/…`, `/callbacks/…` and `/healthz` (issue 12)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.media.store import LocalMediaStore
from bot.metrics import Metrics, count_media_bytes, make_metrics_handler
from storage.database import Database
from storage.jobs import JobRepository
from storage.media import MediaRepository

log = logging.getLogger(__name__)

CALLBACK_MAX_BYTES = 64 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# A job id as we write it: ASCII digits, no leading zero, short enough for SQLite's integer
# ('²'.isdigit() is True, and a 23-digit id overflows). Anything else is routed nowhere: 404.
_JOB_ID = r"[1-9][0-9]{0,17}"


class LoopLagMonitor:
    """Measures how late the event loop wakes up: a blocked loop shows up here first."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.last_lag = 0.0
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)  # the measurement itself, not synchronisation
            self.last_lag = max(0.0, loop.time() - started - self.interval)
            self.max_lag = max(self.max_lag, self.last_lag)


@dataclass
class WebServices:
    db: Database
    jobs: JobRepository
    media: MediaRepository
    local_store: LocalMediaStore | None  # None: media live elsewhere (S3), nothing served here
    # (job id, the task id the body names) -> False when the sender should try again
    on_callback: Callable[[int, str | None], Awaitable[bool]]
    lag: LoopLagMonitor
    metrics: Metrics
    clock: Callable[[], float] = time.time


SERVICES: web.AppKey[WebServices] = web.AppKey("services", WebServices)
LAG: web.AppKey[LoopLagMonitor] = web.AppKey("lag", LoopLagMonitor)


async def serve_media(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    token = request.match_info["token"]
    store = services.local_store
    if store is None or not _TOKEN.match(token):
        raise web.HTTPNotFound()
    media = await services.media.live_by_token(token, now=services.clock())
    if media is None or request.match_info["name"] != media.filename:
        raise web.HTTPNotFound()
    path = store.path_of(media)
    # FileResponse streams from disk with sendfile and answers Range requests itself.
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": media.content_type,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": f'inline; filename="{media.filename}"',
        },
    )
    return response


async def receive_callback(request: web.Request) -> web.Response:
    """A provider callback is only a hint; the tracker asks the provider for the truth."""
    services = request.app[SERVICES]
    if request.content_length is not None and request.content_length > CALLBACK_MAX_BYTES:
        raise web.HTTPRequestEntityTooLarge(CALLBACK_MAX_BYTES, request.content_length)
    body = await _read_capped(request, CALLBACK_MAX_BYTES)
    if body is None:
        raise web.HTTPRequestEntityTooLarge(CALLBACK_MAX_BYTES, CALLBACK_MAX_BYTES + 1)
    secret = request.match_info["secret"]
    job_id_text = request.match_info["job_id"]  # the route's pattern: canonical digits only
    if not _SECRET.match(secret):
        raise web.HTTPNotFound()
    job = await services.jobs.get(int(job_id_text))
    # Same answer for an unknown job and a wrong secret: nothing to learn by probing.
    if job is None or not hmac.compare_digest(job.callback_secret, secret):
        log.warning("callback refused job=%s reason=bad-secret-or-job", job_id_text)
        raise web.HTTPNotFound()
    log.info("callback received job=%d bytes=%d", job.id, len(body))
    try:
        handled = await services.on_callback(job.id, _task_id_of(job.id, body))
    except Exception:
        # Never a 500 page: the provider sends it again (§5: any non-2xx is retried), and a
        # repeat is harmless (adoption is guarded in storage, a hint is idempotent).
        log.exception("callback handling failed job=%d", job.id)
        handled = False
    return web.Response(status=204 if handled else 503)


class CallbackBody(BaseModel):
    """The one field of a callback we use: the task id (the payload is the task-query body,
    §5). Everything else is ignored; the tracker asks the provider for the truth anyway."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)


def _task_id_of(job_id: int, body: bytes) -> str | None:
    """The task id a callback names, or None for a body without a readable one.

    An unreadable body is still answered 204 and taken as a hint: the secret path already
    says the sender knows this job, and a 4xx would only make the provider re-send the same
    bytes three more times (§5).
    """
    try:
        return CallbackBody.model_validate_json(body).id.strip() or None
    except ValidationError:
        log.warning("callback body without a readable task id job=%d bytes=%d", job_id,
                    len(body))
        return None


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    chunks, total = [], 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def livez(request: web.Request) -> web.Response:
    """Liveness: answered by the event loop alone (no database, no thread), so how long it
    takes from outside is the loop's own delay; `/healthz` is readiness."""
    lag = request.app[LAG].last_lag
    return web.json_response({"status": "ok", "event_loop_lag_ms": round(lag * 1000, 1)})


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, object] = {}
    healthy = True
    try:
        async with asyncio.timeout(2):
            await services.db.ping()
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
        healthy = False
    lag = services.lag.last_lag
    checks["event_loop_lag_ms"] = round(lag * 1000, 1)
    if lag > 1.0:
        healthy = False
    checks["status"] = "ok" if healthy else "unhealthy"
    return web.json_response(checks, status=200 if healthy else 503)


def create_web_app(services: WebServices) -> web.Application:
    app = web.Application(client_max_size=CALLBACK_MAX_BYTES)
    app[SERVICES] = services
    app.router.add_get("/m/{token}/{name}", serve_media, allow_head=True)
    app.router.add_post(f"/callbacks/evolink/{{job_id:{_JOB_ID}}}/{{secret}}", receive_callback)
    app.router.add_get("/healthz", healthz, allow_head=True)
    app.on_response_prepare.append(count_media_bytes(services.metrics))
    return app


def create_metrics_app(
    metrics: Metrics, lag: LoopLagMonitor, refresh: Callable[[], Awaitable[object]] | None = None
) -> web.Application:
    """Only `GET /metrics` and `GET /livez`: served on METRICS_HOST/METRICS_PORT, never on
    the public app."""
    app = web.Application()
    app[LAG] = lag
    app.router.add_get("/metrics", make_metrics_handler(metrics, before_render=refresh))
    app.router.add_get("/livez", livez, allow_head=True)
    return app


class WebServer:
    """Starts and stops the app with the bot."""

    def __init__(self, app: web.Application, host: str, port: int, name: str = "web") -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._name = name
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("%s server listening host=%s port=%s", self._name, self._host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
