"""EvoLink's public HTTP API as the simulator serves it (EVOLINK_API.md §1–§3)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .contract import TASK_ID_PREFIX
from .errors import Endpoint, error_response
from .ledger import InsufficientCredits
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
        if sim.create_faults.pop_if("drop"):
            return _drop_connection(request)
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
        late = sim.create_faults.pop_if("hang", "delay")
        if late is not None:
            return await self._misbehave(request, late, task.create_json())
        return web.json_response(task.create_json())

    async def _misbehave(
        self, request: web.Request, fault: Fault, answer: dict[str, Any]
    ) -> web.StreamResponse:
        """The task exists; now answer late (delay) or never (hang)."""
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return web.json_response(answer)
        # hang: hold the socket open until the client gives up (which cancels this handler)
        # or the simulator stops, then close it without a response.
        await self._sim.stopping.wait()
        return _drop_connection(request)

    async def get_task(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim
        task_id = request.match_info["task_id"]
        task = sim.tasks.get(task_id)
        if task is not None:
            task.counts["get"] += 1
        if not sim.authorized(request.headers.get("Authorization")):
            return self._error("query", 401)
        fault = sim.get_faults.pop_if("fail", "delay")
        if fault is not None and fault.kind == "fail":
            return self._error("query", fault.status, retry_after=fault.retry_after)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
        if not task_id.startswith(TASK_ID_PREFIX):
            return self._error("query", 400)
        if task is None or task.expired(sim.clock.now()):
            return self._error("query", 404)
        sim.runner.observe(task)
        return web.json_response(task.query_json())

    async def credits(self, request: web.Request) -> web.StreamResponse:
        if not self._sim.authorized(request.headers.get("Authorization")):
            return self._error("credits", 401)
        return web.json_response(self._sim.ledger.credits_json())

    async def result_file(self, request: web.Request) -> web.StreamResponse:
        # Result links are pre-signed style URLs in the real service: no auth header needed.
        return await self._sim.results.handle(request)


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket without answering; the response below is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)
