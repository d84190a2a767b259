"""EvolinkClient over real loopback HTTP.

Most tests run against the EvoLink simulator (sandbox/evolink_sim). Faults it cannot
produce (garbled 2xx bodies, HTML error pages, refused or slow connections, a GET that
never answers) come from a small aiohttp app in this module.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiolimiter import AsyncLimiter

from bot.evolink import (
    AccessDenied,
    AuthenticationFailed,
    EditTaskRequest,
    EvolinkClient,
    EvolinkError,
    InsufficientCredits,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ProviderUnreachable,
    RateLimited,
    ServerError,
    SubmissionOutcomeUnknown,
    TaskStatus,
    UpstreamUnavailable,
)
from bot.jobs.messages import SUBMIT_ERROR_MESSAGES
from sandbox.demo.processes import free_port
from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from sandbox.media_samples import make_mp4, make_png

API_KEY = "sk-evo-test"
MODEL = "kling-o1-video-edit"
FAST_BACKOFF: dict[str, Any] = {"backoff_initial": 0.001, "backoff_max": 0.01}


@dataclass
class SleepRecorder:
    """Stands in for asyncio.sleep: records each backoff wait and returns at once."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class CountingLimiter(AsyncLimiter):
    def __init__(self) -> None:
        super().__init__(max_rate=1000, time_period=1)
        self.acquired = 0

    async def acquire(self, amount: float = 1) -> None:
        self.acquired += 1
        await super().acquire(amount)


async def _start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def make_client(session: aiohttp.ClientSession, base_url: str, **overrides: Any) -> EvolinkClient:
    options: dict[str, Any] = {"api_key": API_KEY, "read_timeout": 5.0, **FAST_BACKOFF}
    options.update(overrides)
    return EvolinkClient(session, base_url=base_url, **options)


# --- a fault server for what the simulator cannot do ---------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultServer:
    """Answers each request with the next scripted handler (the last one repeats)."""

    base_url: str = ""
    script: list[Handler] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        self.bodies.append(await request.read())
        handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return await handler(request)


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    server = FaultServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner, server.base_url = await _start_app(app)
    try:
        yield server
    finally:
        server.release.set()  # free any handler still "hanging"
        await runner.cleanup()


def reply(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


def hang(server: FaultServer) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await server.release.wait()
        return web.Response(status=204)

    return handler


def drop_connection() -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # body was read: the "request" fully arrived
        await asyncio.Event().wait()  # never reached: the closed transport cancels us
        raise AssertionError

    return handler


def truncated(status: int) -> Handler:
    """Status line and headers arrive, then the socket closes mid-body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        response.content_length = 1000
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(b'{"error": {"co')
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


TASK_JSON = (
    b'{"id":"task-unified-1757169743-abcdefgh","status":"processing","progress":40,'
    b'"object":"video.generation.task"}'
)


# Create answers that provably created nothing (429 too, once retries run out).
CREATE_FAULTS: dict[int, tuple[type[EvolinkError], str]] = {
    400: (InvalidRequest, "invalid_request"),
    401: (AuthenticationFailed, "unauthorized"),
    402: (InsufficientCredits, "insufficient_quota"),
    403: (AccessDenied, "model_access_denied"),
    404: (NotFound, "model_not_found"),
    413: (InvalidRequest, "request_too_large"),
    429: (RateLimited, "rate_limit_exceeded"),
}


def _request(video_url: str = "https://media.example/in.mp4") -> EditTaskRequest:
    return EditTaskRequest(model=MODEL, prompt="make it snow", video_url=video_url)


async def test_malformed_2xx_on_get_is_not_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [reply(200, b'{"status": "completed"}')]  # no id
    client = make_client(session, fault_server.base_url)
    with pytest.raises(MalformedResponse) as info:
        await client.get_task("task-unified-1-abcdefgh")
    assert info.value.status == 200
    assert len(fault_server.seen) == 1


async def test_non_json_2xx_credits_is_malformed(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [reply(200, b"<html>hello</html>", "text/html")]
    with pytest.raises(MalformedResponse):
        await make_client(session, fault_server.base_url).get_credits()


async def test_malformed_2xx_on_create_is_an_unknown_outcome(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [reply(200, b"{not json")]
    with pytest.raises(SubmissionOutcomeUnknown):
        await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert len(fault_server.seen) == 1


async def test_html_502_is_typed_and_retried_on_get(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    fault_server.script = [reply(502, html, "text/html")]
    client = make_client(session, fault_server.base_url, get_attempts=3)
    with pytest.raises(UpstreamUnavailable) as info:
        await client.get_task("task-unified-1-abcdefgh")
    assert info.value.status == 502 and "nginx" not in str(info.value)
    assert len(fault_server.seen) == 3


PROXY_PAGE = (
    b"<html><head><title>%d Bad Gateway</title></head><body>cloudflare "
    + API_KEY.encode()
    + b"</body></html>"
)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 302, 408])
async def test_proxy_answer_on_create_is_unknown_and_never_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer, status: int
) -> None:
    """EvoLink never answers 502 on create and folds 503 into 400 (§4.1): such a page comes
    from a proxy, maybe after the task was created. One POST, then an uncertain outcome."""
    fault_server.script = [reply(status, PROXY_PAGE % status, "text/html"), reply(200, TASK_JSON)]
    client = make_client(session, fault_server.base_url, create_attempts=5)
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await client.create_edit_task(_request())
    assert len(fault_server.seen) == 1
    exc = info.value
    assert exc.status == status and not exc.retryable
    # The excerpt is for the logs: bounded, and the key is redacted even there.
    assert exc.body_excerpt is not None and "Bad Gateway" in exc.body_excerpt
    assert len(exc.body_excerpt) <= 200
    for text in (str(exc), repr(exc), exc.body_excerpt):
        assert API_KEY not in text
    assert "cloudflare" not in str(exc)  # the message itself never quotes the body


@pytest.mark.parametrize(
    ("status", "cls"),
    [(status, cls) for status, (cls, _) in CREATE_FAULTS.items() if status != 429],
)
async def test_refusal_status_on_create_is_definite_whatever_the_body(
    session: aiohttp.ClientSession,
    fault_server: FaultServer,
    status: int,
    cls: type[EvolinkError],
) -> None:
    # A WAF's HTML 403 or a proxy's 413 refuses the request before forwarding it.
    fault_server.script = [reply(status, b"<html>Forbidden</html>", "text/html")]
    with pytest.raises(cls) as info:
        await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert type(info.value) is cls and info.value.status == status
    assert len(fault_server.seen) == 1


def connection_reset() -> Handler:
    """The request arrives, then the server resets the socket (RST, not a clean close)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        sock = request.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.transport.abort()
        await asyncio.Event().wait()  # never reached: the closed transport cancels us
        raise AssertionError

    return handler


async def test_connection_reset_after_send_on_create_is_unknown(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [connection_reset(), reply(200, TASK_JSON)]
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert isinstance(info.value.__cause__, aiohttp.ClientOSError)
    assert info.value.status is None
    assert len(fault_server.seen) == 1


async def test_connection_reset_on_get_is_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [connection_reset(), reply(200, TASK_JSON)]
    task = await make_client(session, fault_server.base_url).get_task("task-unified-1-abcdefgh")
    assert task.progress == 40 and len(fault_server.seen) == 2


@pytest.mark.parametrize("results", ["", ',"results":[]', ',"results":null'])
async def test_completed_without_results_parses(
    session: aiohttp.ClientSession, fault_server: FaultServer, results: str
) -> None:
    body = (
        '{"id":"task-unified-1-abcdefgh","status":"completed","progress":100'
        + results
        + ',"task_info":{"can_cancel":false,"video_duration":7}}'
    )
    fault_server.script = [reply(200, body.encode())]
    task = await make_client(session, fault_server.base_url).get_task("task-unified-1-abcdefgh")
    assert task.status is TaskStatus.COMPLETED and task.is_terminal
    assert task.result_url is None and task.video_duration == 7


async def test_get_read_timeout_is_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [hang(fault_server), reply(200, TASK_JSON)]
    client = make_client(session, fault_server.base_url, read_timeout=0.3)
    task = await client.get_task("task-unified-1757169743-abcdefgh")
    assert task.progress == 40
    assert len(fault_server.seen) == 2


async def test_disconnect_after_send_on_create_is_never_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [drop_connection(), reply(200, TASK_JSON)]
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)
    assert len(fault_server.seen) == 1


async def test_disconnect_on_get_is_retried(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [drop_connection(), drop_connection(), reply(200, TASK_JSON)]
    task = await make_client(session, fault_server.base_url).get_task("task-unified-1-abcdefgh")
    assert task.progress == 40


async def test_status_survives_a_broken_error_body(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    # A 429 is an answer even if its body is cut off, so the create may be repeated.
    fault_server.script = [truncated(429), reply(200, TASK_JSON)]
    await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert len(fault_server.seen) == 2


async def test_broken_2xx_body_on_create_is_unknown(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [truncated(200), reply(200, TASK_JSON)]
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await make_client(session, fault_server.base_url).create_edit_task(_request())
    assert info.value.status == 200
    assert len(fault_server.seen) == 1


# --- connection-level faults, steered by a resolver ----------------------------------


class ScriptedResolver(AbstractResolver):
    """Resolves every name to 127.0.0.1; each call takes the next scripted behaviour.

    "refuse" points the connection at a closed port, "stall" never answers (so the
    connect timeout fires), "nxdomain" fails the lookup, "ok" lets the connection
    through to the real port.
    """

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls = 0
        self._never = asyncio.Event()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        action = self.script.pop(0) if self.script else "ok"
        if action == "stall":
            await self._never.wait()
        if action == "nxdomain":
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        if action == "refuse":
            port = free_port()
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


SessionFactory = Callable[[list[str]], tuple[aiohttp.ClientSession, ScriptedResolver]]


@pytest.fixture
async def resolver_session() -> AsyncIterator[SessionFactory]:
    """Sessions whose every new connection goes through a ScriptedResolver."""
    sessions: list[aiohttp.ClientSession] = []

    def build(script: list[str]) -> tuple[aiohttp.ClientSession, ScriptedResolver]:
        resolver = ScriptedResolver(script)
        # No DNS cache, so each connection attempt consults the script.
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
        sessions.append(aiohttp.ClientSession(connector=connector))
        return sessions[-1], resolver

    yield build
    for http in sessions:
        await http.close()


def _named(base_url: str) -> str:
    """Same server, reached through a host name so the resolver is consulted."""
    return base_url.replace("127.0.0.1", "evolink.test")


async def test_connection_refused_exhausts_attempts(resolver_session: SessionFactory) -> None:
    http, resolver = resolver_session(["refuse"] * 10)
    client = make_client(http, "http://evolink.test:80", create_attempts=3, get_attempts=4)
    with pytest.raises(ProviderUnreachable):
        await client.create_edit_task(_request())
    assert resolver.calls == 3
    with pytest.raises(ProviderUnreachable):
        await client.get_credits()
    assert resolver.calls == 3 + 4


async def test_nothing_listening_on_create_is_retried_then_unreachable(
    session: aiohttp.ClientSession,
) -> None:
    sleep = SleepRecorder()
    client = make_client(
        session, f"http://127.0.0.1:{free_port()}", create_attempts=4, sleep=sleep
    )
    with pytest.raises(ProviderUnreachable) as info:
        await client.create_edit_task(_request())
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert len(sleep.waits) == 3  # 4 attempts, 3 backoffs between them


async def test_dns_failure_then_create_succeeds(
    resolver_session: SessionFactory, fault_server: FaultServer
) -> None:
    http, resolver = resolver_session(["nxdomain", "nxdomain"])
    fault_server.script = [reply(200, TASK_JSON)]
    task = await make_client(http, _named(fault_server.base_url)).create_edit_task(_request())
    assert task.id.startswith("task-unified-")
    assert resolver.calls == 3 and len(fault_server.seen) == 1


async def test_connection_refused_then_create_succeeds(
    resolver_session: SessionFactory, fault_server: FaultServer
) -> None:
    http, resolver = resolver_session(["refuse", "refuse"])
    fault_server.script = [reply(200, TASK_JSON)]
    client = make_client(http, _named(fault_server.base_url))
    task = await client.create_edit_task(_request())
    assert task.id.startswith("task-unified-")
    assert resolver.calls == 3
    assert len(fault_server.seen) == 1


async def test_connect_timeout_then_create_succeeds(
    resolver_session: SessionFactory, fault_server: FaultServer
) -> None:
    http, resolver = resolver_session(["stall"])
    fault_server.script = [reply(200, TASK_JSON)]
    client = make_client(http, _named(fault_server.base_url), connect_timeout=0.2)
    await client.create_edit_task(_request())
    assert resolver.calls == 2
    assert len(fault_server.seen) == 1


async def test_key_never_leaks_into_errors_or_logs(
    fault_server: FaultServer,
    resolver_session: SessionFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error":{{"code":"unauthorized","message":"bad token Bearer {API_KEY}"}}}}'
    fault_server.script = [reply(401, echo.encode())]
    http, _ = resolver_session(["refuse"] * 10)
    plain = aiohttp.ClientSession()
    failures: list[EvolinkError] = []
    try:
        for client, call in [
            (make_client(plain, fault_server.base_url), "get"),
            (make_client(http, "http://evolink.test:80"), "get"),
            (make_client(http, "http://evolink.test:80"), "create"),
        ]:
            with pytest.raises(EvolinkError) as info:
                if call == "get":
                    await client.get_task("task-unified-1-abcdefgh")
                else:
                    await client.create_edit_task(_request())
            failures.append(info.value)
            assert API_KEY not in repr(client)
    finally:
        await plain.close()
    for exc in failures:
        rendered = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
        assert API_KEY not in rendered
    assert caplog.records, "retries should have been logged"
    assert API_KEY not in caplog.text


# --- against the EvoLink simulator ---------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("evolink-media")
    make_mp4(folder / "in.mp4", seconds=4)
    make_png(folder / "ref.png")
    return folder


@dataclass
class MediaHost:
    base_url: str
    callbacks: list[dict[str, Any]]

    def url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"


@pytest.fixture
async def media(media_dir: Path) -> AsyncIterator[MediaHost]:
    """Serves the inputs the simulator fetches, and takes its callbacks."""
    host = MediaHost(base_url="", callbacks=[])

    async def callback(request: web.Request) -> web.Response:
        host.callbacks.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_static("/media", media_dir)
    app.router.add_post("/callback", callback)
    runner, host.base_url = await _start_app(app)
    yield host
    await runner.cleanup()


@pytest.fixture
async def sim() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(
        api_key=API_KEY, time_scale=1000.0, allow_private_urls=True, allow_insecure_callbacks=True
    ) as simulator:
        yield simulator


@pytest.fixture
def edit(media: MediaHost) -> EditTaskRequest:
    return _request(media.url("in.mp4"))


ENVELOPES = ["legacy", "current"]


async def test_full_lifecycle(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, media: MediaHost
) -> None:
    client = make_client(session, sim.base_url)
    before = await client.get_credits()
    request = EditTaskRequest(
        model=MODEL,
        prompt="make it snow",
        video_url=media.url("in.mp4"),
        image_urls=[media.url("ref.png")],
        keep_original_sound=False,
        callback_url=f"{media.base_url}/callback",
    )
    created = await client.create_edit_task(request)
    assert created.status is TaskStatus.PENDING and created.usage is not None
    # The provider's own figures (held before the clip is probed: at most 10 s × 12/s).
    assert created.usage.billing_rule == "per_second"
    assert created.credits_reserved is not None and 0 < created.credits_reserved <= 120
    # The strict simulator accepted exactly what we sent.
    assert sim.tasks[created.id].body == request.to_payload()

    early = await client.get_task(created.id)
    assert early.id == created.id and not early.is_terminal

    await sim.wait_until_settled(created.id)
    done = await client.get_task(created.id)
    assert done.status is TaskStatus.COMPLETED and done.progress == 100
    assert done.result_url is not None and done.video_duration == 4
    async with session.get(done.result_url) as result:
        assert result.status == 200
        assert (await result.read())[4:8] == b"ftyp"

    after = await client.get_credits()
    assert before.remaining_credits is not None and after.remaining_credits is not None
    assert before.remaining_credits - after.remaining_credits == 4 * 12  # 4 s at 12 credits/s
    assert [body["status"] for body in media.callbacks] == ["completed"]
    assert sim.request_counts(created.id) == {"create": 1, "get": 2, "callback": 1}


async def test_failed_task_carries_task_error(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sim.script_next_task(TaskScript(outcome="failed", error_code="content_policy_violation"))
    client = make_client(session, sim.base_url)
    task = await client.create_edit_task(edit)
    await sim.wait_until_settled(task.id)
    failed = await client.get_task(task.id)
    assert failed.status is TaskStatus.FAILED and failed.result_url is None
    assert failed.error is not None and failed.error.code == "content_policy_violation"
    assert not failed.error.retryable


GET_FAULTS: dict[int, tuple[type[EvolinkError], str]] = {
    400: (InvalidRequest, "invalid_task_id"),
    402: (InsufficientCredits, "quota_exceeded"),
    403: (AccessDenied, "permission_denied"),
    404: (NotFound, "task_not_found"),
    429: (RateLimited, "rate_limit_exceeded"),
    500: (ServerError, "internal_error"),
    502: (UpstreamUnavailable, "upstream_error"),
    503: (UpstreamUnavailable, "service_unavailable"),
}


def _check(exc: EvolinkError, status: int, code: str, envelope: str) -> None:
    assert exc.status == status
    # Legacy bodies only repeat the HTTP status as an integer code.
    assert exc.code == (code if envelope == "current" else None)
    assert exc.message and API_KEY not in str(exc)


# 5xx on create: EvoLink's simulator created nothing, but the client cannot know that.
CREATE_UNCERTAIN = [500, 502, 503]


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("status", sorted([*CREATE_FAULTS, *CREATE_UNCERTAIN]))
async def test_create_error_classes(
    session: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    edit: EditTaskRequest,
    envelope: str,
    status: int,
) -> None:
    sim.error_envelope = envelope  # type: ignore[assignment]
    sim.fail_next_create(status, count=3)
    client = make_client(session, sim.base_url, create_attempts=3)
    with pytest.raises(EvolinkError) as info:
        await client.create_edit_task(edit)
    # Only a 429 is worth repeating; a refusal or a 5xx is answered by one POST.
    assert sim.create_attempts == (3 if status == 429 else 1) and not sim.tasks
    if status in CREATE_UNCERTAIN:
        # §4.1: a 5xx on create may follow a created (and billed) task.
        assert isinstance(info.value, SubmissionOutcomeUnknown)
        assert info.value.status == status
        assert info.value.body_excerpt is not None and "error" in info.value.body_excerpt
        return
    cls, code = CREATE_FAULTS[status]
    assert type(info.value) is cls
    _check(info.value, status, code, envelope)
    # The engine releases the reservation with a message for every definite refusal.
    assert cls in SUBMIT_ERROR_MESSAGES


@pytest.mark.parametrize("envelope", ENVELOPES)
@pytest.mark.parametrize("status", sorted(GET_FAULTS))
async def test_get_error_classes(
    session: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    edit: EditTaskRequest,
    envelope: str,
    status: int,
) -> None:
    client = make_client(session, sim.base_url, get_attempts=1)
    task = await client.create_edit_task(edit)
    sim.error_envelope = envelope  # type: ignore[assignment]
    sim.fail_next_get(status)
    cls, code = GET_FAULTS[status]
    with pytest.raises(cls) as info:
        await client.get_task(task.id)
    assert type(info.value) is cls
    _check(info.value, status, code, envelope)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_real_rejections(
    session: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    edit: EditTaskRequest,
    envelope: str,
) -> None:
    """Errors the simulator produces on its own, not by injection."""
    sim.error_envelope = envelope  # type: ignore[assignment]
    client = make_client(session, sim.base_url)
    wrong_key = make_client(session, sim.base_url, api_key="sk-evo-wrong")

    with pytest.raises(AuthenticationFailed) as auth:
        await wrong_key.create_edit_task(edit)
    _check(auth.value, 401, "unauthorized", envelope)
    with pytest.raises(AuthenticationFailed):
        await wrong_key.get_task("task-unified-1-abcdefgh")
    with pytest.raises(AuthenticationFailed):
        await wrong_key.get_credits()

    with pytest.raises(InvalidRequest) as bad_url:
        await client.create_edit_task(_request("ftp://media.example/in.mp4"))
    _check(bad_url.value, 400, "invalid_request", envelope)

    sim.denied_models.add(MODEL)
    with pytest.raises(AccessDenied):
        await client.create_edit_task(edit)
    sim.denied_models.clear()

    with pytest.raises(InvalidRequest) as bad_id:
        await client.get_task("not-a-task")
    _check(bad_id.value, 400, "invalid_task_id", envelope)
    with pytest.raises(NotFound) as missing:
        await client.get_task("task-unified-1-abcdefgh")
    _check(missing.value, 404, "task_not_found", envelope)
    # None of these is worth repeating: every create was answered once, nothing created.
    assert sim.create_attempts == 3 and not sim.tasks


async def test_insufficient_credits_is_not_retried(
    session: aiohttp.ClientSession, edit: EditTaskRequest
) -> None:
    async with EvolinkSimulator(api_key=API_KEY, credits=10, allow_private_urls=True) as poor:
        with pytest.raises(InsufficientCredits):
            await make_client(session, poor.base_url).create_edit_task(edit)
        assert poor.create_attempts == 1 and not poor.tasks


# --- credits ---------------------------------------------------------------------------


async def test_credits_from_the_simulator(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sim.credits = 1234.5
    client = make_client(session, sim.base_url)
    fresh = await client.get_credits()
    assert fresh.success is True and not fresh.unlimited
    assert fresh.remaining_credits == 1234.5 and fresh.spendable_credits == 1234.5
    assert fresh.data.token is not None and fresh.data.token.used_credits == 0

    task = await client.create_edit_task(edit)
    await sim.wait_until_settled(task.id)
    spent = await client.get_credits()
    assert spent.remaining_credits == pytest.approx(1234.5 - 48)
    assert spent.data.token is not None and spent.data.token.used_credits == pytest.approx(48)


CREDITS_JSON = (
    b'{"success":true,"message":"","data":{"token":{"remaining_credits":0,'
    b'"used_credits":12,"unlimited_credits":true,"note":"x"},'
    b'"user":{"remaining_credits":95.5,"used_credits":4.5}},"request_id":"r1"}'
)


async def test_credits_get_is_retried_and_unlimited_key_says_so(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [
        reply(503, b"<html>busy</html>", "text/html"),
        reply(429, b""),
        reply(200, CREDITS_JSON),
    ]
    credits = await make_client(session, fault_server.base_url).get_credits()
    assert fault_server.seen == [("GET", "/v1/credits")] * 3
    assert credits.unlimited and credits.remaining_credits is None
    assert credits.spendable_credits == 95.5  # an unlimited key draws on the account


async def test_credits_success_false_is_malformed(
    session: aiohttp.ClientSession, fault_server: FaultServer
) -> None:
    fault_server.script = [reply(200, b'{"success":false,"message":"token disabled"}')]
    with pytest.raises(MalformedResponse) as info:
        await make_client(session, fault_server.base_url).get_credits()
    assert "token disabled" in str(info.value)
    assert len(fault_server.seen) == 1


# --- retry policy against the simulator ----------------------------------------------


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_create_429_honours_retry_after(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest, envelope: str
) -> None:
    sim.error_envelope = envelope  # type: ignore[assignment]
    sim.fail_next_create(429, retry_after=7)
    sleep = SleepRecorder()
    client = make_client(session, sim.base_url, backoff_max=30.0, sleep=sleep)
    task = await client.create_edit_task(edit)
    assert sleep.waits == [7.0]
    assert sim.create_attempts == 2 and list(sim.tasks) == [task.id]


async def test_create_429_legacy_hint_without_header_is_capped(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sim.error_envelope = "legacy"
    sim.fail_next_create(429)  # body says "retry after 60 seconds"
    sleep = SleepRecorder()
    await make_client(session, sim.base_url, backoff_max=20.0, sleep=sleep).create_edit_task(edit)
    assert sleep.waits == [20.0]


async def test_get_429_honours_retry_after(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sleep = SleepRecorder()
    client = make_client(session, sim.base_url, backoff_max=30.0, sleep=sleep)
    task = await client.create_edit_task(edit)
    sim.fail_next_get(429, retry_after=3)
    assert (await client.get_task(task.id)).id == task.id
    assert sleep.waits == [3.0]
    assert sim.request_counts(task.id)["get"] == 2


async def test_create_429_then_200_is_two_posts(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sim.fail_next_create(429)
    task = await make_client(session, sim.base_url).create_edit_task(edit)
    assert sim.create_attempts == 2 and list(sim.tasks) == [task.id]


async def test_create_gives_up_after_create_attempts(
    session: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    edit: EditTaskRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.evolink")
    sim.fail_next_create(429, count=5)
    with pytest.raises(RateLimited):
        await make_client(session, sim.base_url, create_attempts=3).create_edit_task(edit)
    assert sim.create_attempts == 3 and not sim.tasks
    retry_lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retry_lines) == 2
    assert "POST /v1/videos/generations" in retry_lines[0] and "status=429" in retry_lines[0]


async def test_create_hang_after_send_is_unknown_and_never_retried(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    sim.hang_next_create()
    client = make_client(session, sim.base_url, read_timeout=0.5)
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await client.create_edit_task(edit)
    assert isinstance(info.value.__cause__, aiohttp.SocketTimeoutError)
    assert not info.value.retryable
    # The provider did create (and will bill) the task we never heard about.
    assert sim.create_attempts == 1 and len(sim.tasks) == 1


async def test_create_dropped_connection_is_unknown(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    # The simulator created nothing here, but from the client's side a socket closed
    # after sending is indistinguishable from the hang above.
    sim.drop_next_create_connection()
    with pytest.raises(SubmissionOutcomeUnknown) as info:
        await make_client(session, sim.base_url).create_edit_task(edit)
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)
    assert sim.create_attempts == 1


async def test_get_retries_5xx_then_succeeds(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    client = make_client(session, sim.base_url)
    task = await client.create_edit_task(edit)
    sim.fail_next_get(500)
    sim.fail_next_get(503)
    sim.fail_next_get(502)
    assert (await client.get_task(task.id)).id == task.id
    assert sim.request_counts(task.id)["get"] == 4


async def test_get_retries_read_timeout_then_succeeds(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    client = make_client(session, sim.base_url, read_timeout=0.3)
    task = await client.create_edit_task(edit)
    sim.delay_next_get(30.0)  # far beyond read_timeout: the first GET never answers in time
    assert (await client.get_task(task.id)).id == task.id
    assert sim.request_counts(task.id)["get"] == 2


async def test_get_gives_up_and_does_not_retry_404(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    client = make_client(session, sim.base_url, get_attempts=3)
    task = await client.create_edit_task(edit)
    sim.fail_next_get(503, count=10)
    with pytest.raises(UpstreamUnavailable):
        await client.get_task(task.id)
    assert sim.request_counts(task.id)["get"] == 3
    sim.clear_faults()
    sim.expire_task(task.id)
    with pytest.raises(NotFound):
        await client.get_task(task.id)
    assert sim.request_counts(task.id)["get"] == 4


async def test_limiter_is_acquired_for_every_http_call(
    session: aiohttp.ClientSession, sim: EvolinkSimulator, edit: EditTaskRequest
) -> None:
    limiter = CountingLimiter()
    client = make_client(session, sim.base_url, limiter=limiter)
    sim.fail_next_create(429)
    task = await client.create_edit_task(edit)  # 2 calls
    sim.fail_next_get(500)
    await client.get_task(task.id)  # 2 calls
    await client.get_credits()  # 1 call
    assert limiter.acquired == 5
