"""EvoLink's public HTTP API as the simulator serves it (EVOLINK_API.md §1–§3)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .contract import TASK_ID_PREFIX
from .errors import Endpoint, error_response
from .ledger import InsufficientCredits
from .proxy import drop_connection, proxy_error_page
from .script import Fault
from .validation import RequestInvalid, validate_create

if TYPE_CHECKING:
    from .simulator import EvolinkSimulator


class PublicApi:
    def __init__(self, sim: EvolinkSimulator) -> None:
        self._sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/videos/generations", self.create),
            web.get("/v1/tasks/{task_id}", self.get_task),
            web.get("/v1/credits", self.credits),
            web.get("/files/{name}", self.result_file),
        ]

    def _error(
        self, endpoint: Endpoint, status: int, *, detail: str | None = None, **kwargs: Any
    ) -> web.Response:
        return error_response(endpoint, status, self._sim.error_envelope, detail=detail, **kwargs)

    async def create(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim
        sim.create_attempts += 1
        early = sim.create_faults.pop_if("drop", "proxy_before")
        if early is not None:  # nothing read, nothing created
            return _answer_fault(request, early)
        if not sim.authorized(request.headers.get("Authorization")):
            return self._error("create", 401)
        failure = sim.create_faults.pop_if("fail")
        if failure is not None:
            return self._error("create", failure.status, retry_after=failure.retry_after)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._error("create", 413)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error("create", 400, detail="request body is not valid JSON")
        try:
            parsed = validate_create(
                body,
                allow_insecure_callbacks=sim.allow_insecure_callbacks,
                allow_unknown_fields=sim.allow_unknown_fields,
            )
        except RequestInvalid as exc:
            return self._error("create", 400, detail=exc.detail)
        if parsed.model in sim.denied_models:
            return self._error("create", 403, model=parsed.model)
        try:
            task = sim.create_task(parsed, body)
        except InsufficientCredits:
            return self._error("create", 402)
        late = sim.create_faults.pop_if("hang", "delay", "proxy", "drop_after")
        if late is not None:
            return await self._misbehave(request, late, task.create_json())
        return web.json_response(task.create_json())

    async def _misbehave(
        self, request: web.Request, fault: Fault, answer: dict[str, Any]
    ) -> web.StreamResponse:
        """The task exists (and is billed); now answer late, never, or not as EvoLink."""
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return web.json_response(answer)
        if fault.kind == "hang":
            # Hold the socket open until the client gives up (which cancels this handler)
            # or the simulator stops, then close it without a response.
            await self._sim.stopping.wait()
        return _answer_fault(request, fault)

    async def get_task(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim
        task_id = request.match_info["task_id"]
        task = sim.tasks.get(task_id)
        if task is not None:
            task.counts["get"] += 1
        if not sim.authorized(request.headers.get("Authorization")):
            return self._error("query", 401)
        fault = sim.get_faults.pop_if("fail", "delay", "proxy")
        if fault is not None and fault.kind == "fail":
            return self._error("query", fault.status, retry_after=fault.retry_after)
        if fault is not None and fault.kind == "proxy":
            return _answer_fault(request, fault)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
        if not task_id.startswith(TASK_ID_PREFIX):
            return self._error("query", 400)
        # §2 404 means "not found or expired"; a lagging replica or proxy says it transiently.
        if task is None or task.expired(sim.clock.now()) or sim.not_found_hit(task_id):
            return self._error("query", 404)
        sim.runner.observe(task)
        return web.json_response(task.query_json(usage=sim.echo_usage))

    async def credits(self, request: web.Request) -> web.StreamResponse:
        if not self._sim.authorized(request.headers.get("Authorization")):
            return self._error("credits", 401)
        return web.json_response(self._sim.ledger.credits_json())

    async def result_file(self, request: web.Request) -> web.StreamResponse:
        # Result links are pre-signed style URLs in the real service: no auth header needed.
        return await self._sim.results.handle(request)


def _answer_fault(request: web.Request, fault: Fault) -> web.Response:
    """What a proxy in front of EvoLink sends: an HTML error page, or no answer at all."""
    if fault.kind in ("proxy", "proxy_before"):
        return proxy_error_page(fault.status, fault.style)
    return drop_connection(request)
