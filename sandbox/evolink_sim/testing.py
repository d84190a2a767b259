"""Loopback peers for tests that drive the simulator: an input server and a callback sink.

    async with MediaServer(tmp_path) as media, CallbackReceiver([500, 200]) as hooks:
        video_url = media.url("in.mp4")                  # serves tmp_path/in.mp4
        callback_url = hooks.url("/hook/job-1")          # first POST gets 500, then 200

MediaServer also has misbehaving routes for the simulator's input checks:
`/status/{code}` answers that status, `/redirect/{name}` 302s to a file,
`/redirect-to?url=...` 302s anywhere, and `/stream/{total}?magic=png|mp4&length=0|1`
streams `total` bytes (a real signature then zeros), recording in `stream_sent` how much
was actually written before the reader hung up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

_MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    "none": b"",
}


class _LoopbackServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    def _build(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        self._runner = web.AppRunner(self._build(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class MediaServer(_LoopbackServer):
    """Serves the files of one directory (by bare name only) plus failure routes."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.root = root
        self.requests: list[str] = []  # every path asked for, in order
        self.stream_sent: list[int] = []  # bytes written per /stream request

    def url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"

    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/media/{name}", self._file),
                web.get("/status/{code}", self._status),
                web.get("/redirect/{name}", self._redirect),
                web.get("/redirect-to", self._redirect_to),
                web.get("/stream/{total}", self._stream),
            ]
        )
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        response: web.StreamResponse = await handler(request)
        return response

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.root / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), text="scripted")

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/media/{request.match_info['name']}")

    async def _redirect_to(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["url"])

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        total = int(request.match_info["total"])
        head = _MAGIC[request.query.get("magic", "none")]
        response = web.StreamResponse()
        if request.query.get("length") == "1":
            response.content_length = total
        await response.prepare(request)
        sent = 0
        chunk = bytes(64 * 1024)
        try:
            await response.write(head)
            sent = len(head)
            while sent < total:
                piece = chunk[: min(len(chunk), total - sent)]
                await response.write(piece)
                sent += len(piece)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader stopped early, which is what some tests want to see
        finally:
            self.stream_sent.append(sent)
        return response


@dataclass(frozen=True)
class ReceivedCallback:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON (or the raw text when it was not JSON)
    answered: int | Literal["hang"]


class CallbackReceiver(_LoopbackServer):
    """Records POSTed callbacks; answers each with the next planned status (then 200).

    A planned `"hang"` holds that request open until the server stops, so the sender's
    timeout fires.
    """

    def __init__(
        self,
        plan: Sequence[int | Literal["hang"]] = (),
        host: str = "127.0.0.1",
        default_status: int = 200,
    ) -> None:
        super().__init__(host)
        self.plan: deque[int | Literal["hang"]] = deque(plan)
        self.default_status = default_status
        self.received: list[ReceivedCallback] = []

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"

    def _build(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.post("/{tail:.*}", self._receive)])
        return app

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        text = await request.text()
        try:
            body: Any = await request.json()
        except ValueError:
            body = text
        answer = self.plan.popleft() if self.plan else self.default_status
        self.received.append(ReceivedCallback(request.path, dict(request.headers), body, answer))
        if answer == "hang":
            await self._closing.wait()  # the sender gives up first; stop() releases us
            return web.Response(status=503)
        return web.Response(status=answer, text="ok")
