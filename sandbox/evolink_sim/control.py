"""`/_sim/` control API: the Python control surface over HTTP, for other processes.

No auth: the simulator is a loopback test tool. Bodies are JSON, validated by the pydantic
models below; mistakes answer 400 `{"error": "..."}` and unknown task ids 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .proxy import ProxyStyle
from .script import ResultsMode, TaskScript
from .stats import simulator_stats

if TYPE_CHECKING:
    from .simulator import EvolinkSimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailBody(_Body):
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: float | None = Field(default=None, ge=0)


class CountBody(_Body):
    count: int = Field(default=1, ge=1)


class DelayBody(_Body):
    seconds: float = Field(ge=0)
    count: int = Field(default=1, ge=1)


class ProxyFailBody(_Body):
    status: int = Field(default=502, ge=500, le=599)
    count: int = Field(default=1, ge=1)
    created: bool = True
    style: ProxyStyle = "nginx"


class NotFoundBody(_Body):
    count: int | None = Field(default=None, ge=1)
    task_id: str | None = None
    for_seconds: float | None = Field(default=None, ge=0)


class BreakResultBody(_Body):
    status: Literal["reset"] | int = 503
    for_requests: int | None = Field(default=None, ge=1)
    for_seconds: float | None = Field(default=None, ge=0)


class CompleteBody(_Body):
    results: ResultsMode | None = None


class FailTaskBody(_Body):
    code: str = "service_error"
    message: str | None = None


class AdvanceBody(_Body):
    seconds: float = Field(ge=0)


class ConfigBody(_Body):
    time_scale: float | None = Field(default=None, ge=0)
    error_envelope: Literal["current", "legacy"] | None = None
    credits: float | None = Field(default=None, ge=0, description="new remaining balance")
    allow_private_urls: bool | None = None
    allow_insecure_callbacks: bool | None = None
    allow_unknown_fields: bool | None = None
    result_ttl_s: float | None = Field(default=None, ge=0)
    task_retention_s: float | None = Field(default=None, ge=0)
    denied_models: list[str] | None = None
    echo_usage: bool | None = None


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guard(handler: Handler) -> Handler:
    """Turn the simulator's KeyError/ValueError/validation errors into 404/400 answers."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as exc:
            return _problem(400, str(exc))
        except KeyError as exc:
            return _problem(404, str(exc.args[0]) if exc.args else "not found")
        except (ValueError, FileNotFoundError) as exc:
            return _problem(400, str(exc))

    return wrapped


class ControlApi:
    def __init__(self, sim: EvolinkSimulator) -> None:
        self._sim = sim

    def routes(self) -> list[web.RouteDef]:
        post = {
            "/_sim/script": self.script,
            "/_sim/default-script": self.default_script,
            "/_sim/fail-next-create": self.fail_next_create,
            "/_sim/hang-next-create": self.hang_next_create,
            "/_sim/drop-next-create-connection": self.drop_next_create_connection,
            "/_sim/delay-next-create": self.delay_next_create,
            "/_sim/proxy-fail-next-create": self.proxy_fail_next_create,
            "/_sim/drop-after-create-next": self.drop_after_create_next,
            "/_sim/fail-next-get": self.fail_next_get,
            "/_sim/delay-next-get": self.delay_next_get,
            "/_sim/proxy-fail-next-get": self.proxy_fail_next_get,
            "/_sim/not-found-next-get": self.not_found_next_get,
            "/_sim/clear-faults": self.clear_faults,
            "/_sim/break-result/{task_id}": self.break_result,
            "/_sim/expire-result/{task_id}": self.expire_result,
            "/_sim/expire-task/{task_id}": self.expire_task,
            "/_sim/complete/{task_id}": self.complete,
            "/_sim/fail/{task_id}": self.fail,
            "/_sim/config": self.config,
            "/_sim/advance": self.advance,
        }
        get = {
            "/_sim/tasks": self.list_tasks,
            "/_sim/tasks/{task_id}": self.task,
            "/_sim/stats": self.stats,
        }
        return [web.post(path, _guard(h)) for path, h in post.items()] + [
            web.get(path, _guard(h)) for path, h in get.items()
        ]

    @staticmethod
    async def _body(request: web.Request, model: type[M]) -> M:
        raw = await request.read()
        return model.model_validate_json(raw or b"{}")  # ValidationError → 400 via _guard

    def _ok(self, **extra: Any) -> web.Response:
        return web.json_response({"ok": True, **extra})

    async def script(self, request: web.Request) -> web.StreamResponse:
        self._sim.script_next_task(await self._body(request, TaskScript))
        return self._ok()

    async def default_script(self, request: web.Request) -> web.StreamResponse:
        self._sim.set_default_script(await self._body(request, TaskScript))
        return self._ok()

    async def fail_next_create(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, FailBody)
        self._sim.fail_next_create(body.status, body.count, body.retry_after)
        return self._ok()

    async def hang_next_create(self, request: web.Request) -> web.StreamResponse:
        self._sim.hang_next_create((await self._body(request, CountBody)).count)
        return self._ok()

    async def drop_next_create_connection(self, request: web.Request) -> web.StreamResponse:
        self._sim.drop_next_create_connection((await self._body(request, CountBody)).count)
        return self._ok()

    async def delay_next_create(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, DelayBody)
        self._sim.delay_next_create(body.seconds, body.count)
        return self._ok()

    async def proxy_fail_next_create(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, ProxyFailBody)
        self._sim.proxy_fail_next_create(
            body.status, body.count, created=body.created, style=body.style
        )
        return self._ok()

    async def drop_after_create_next(self, request: web.Request) -> web.StreamResponse:
        self._sim.drop_after_create_next((await self._body(request, CountBody)).count)
        return self._ok()

    async def fail_next_get(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, FailBody)
        self._sim.fail_next_get(body.status, body.count, body.retry_after)
        return self._ok()

    async def delay_next_get(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, DelayBody)
        self._sim.delay_next_get(body.seconds, body.count)
        return self._ok()

    async def proxy_fail_next_get(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, ProxyFailBody)
        if not body.created:
            raise ValueError("'created' only applies to creates")
        self._sim.proxy_fail_next_get(body.status, body.count, style=body.style)
        return self._ok()

    async def not_found_next_get(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, NotFoundBody)
        self._sim.not_found_next_get(body.count, body.task_id, for_seconds=body.for_seconds)
        return self._ok()

    async def break_result(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, BreakResultBody)
        self._sim.break_result(
            request.match_info["task_id"],
            body.status,
            for_requests=body.for_requests,
            for_seconds=body.for_seconds,
        )
        return self._ok()

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        self._sim.clear_faults()
        return self._ok()

    async def expire_result(self, request: web.Request) -> web.StreamResponse:
        self._sim.expire_result(request.match_info["task_id"])
        return self._ok()

    async def expire_task(self, request: web.Request) -> web.StreamResponse:
        self._sim.expire_task(request.match_info["task_id"])
        return self._ok()

    async def complete(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, CompleteBody)
        self._sim.complete_now(request.match_info["task_id"], body.results)
        return self._ok()

    async def fail(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, FailTaskBody)
        self._sim.fail_now(request.match_info["task_id"], body.code, body.message)
        return self._ok()

    async def config(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, ConfigBody)
        sim = self._sim
        if body.time_scale is not None:
            sim.time_scale = body.time_scale
        if body.error_envelope is not None:
            sim.error_envelope = body.error_envelope
        if body.credits is not None:
            sim.credits = body.credits
        for name in (
            "allow_private_urls",
            "allow_insecure_callbacks",
            "allow_unknown_fields",
            "result_ttl_s",
            "task_retention_s",
            "echo_usage",
        ):
            value = getattr(body, name)
            if value is not None:
                setattr(sim, name, value)
        if body.denied_models is not None:
            sim.denied_models = set(body.denied_models)
        return self._ok(stats=simulator_stats(sim))

    async def advance(self, request: web.Request) -> web.StreamResponse:
        self._sim.advance((await self._body(request, AdvanceBody)).seconds)
        return self._ok(provider_now=self._sim.clock.now())

    async def list_tasks(self, request: web.Request) -> web.StreamResponse:
        usage = self._sim.echo_usage
        return web.json_response(
            {"tasks": [t.snapshot(usage=usage) for t in self._sim.tasks.values()]}
        )

    async def task(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        if task_id not in self._sim.tasks:
            return _problem(404, f"unknown task {task_id}")
        return web.json_response(self._sim.tasks[task_id].snapshot(usage=self._sim.echo_usage))

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(simulator_stats(self._sim))
