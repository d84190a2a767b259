"""Shared pieces of the REST routes: the route table, JSON answers, auth and id parsing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors, messages
from ..models import Application

if TYPE_CHECKING:
    from ..emulator import DiscordEmulator

API_PREFIX = "/api/v10"
EMULATOR: web.AppKey[DiscordEmulator] = web.AppKey("discord_emulator")
APPLICATION: web.RequestKey[Application] = web.RequestKey("discord_emulator.application")
RECEIVED: web.RequestKey[float] = web.RequestKey("discord_emulator.received")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RouteTable:
    """``(method, path, handler)`` triples; paths are relative to ``/api/v10``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, path, handler))
            return handler

        return register


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json`` (no charset)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def emulator(request: web.Request) -> DiscordEmulator:
    return request.app[EMULATOR]


def bot_application(request: web.Request) -> Application:
    """The application whose bot token authenticated this request (set by the middleware)."""
    app: Application | None = request.get(APPLICATION)
    if app is None:
        raise errors.unauthorized()
    return app


def authenticate(request: web.Request) -> Application:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    emu = emulator(request)
    app = emu.state.application_by_token(token) if scheme == "Bot" else None
    if app is None:
        raise errors.unauthorized()
    request[APPLICATION] = app
    return app


def snowflake(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise errors.invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
    return int(raw)


async def json_body(request: web.Request) -> Any:
    """The JSON body, checked against Discord's OpenAPI description."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.DiscordError(400, 50109, "The request body contains invalid JSON.") from None
    _check_body(request, body)
    return body


async def message_body(request: web.Request) -> messages.Outgoing:
    """A message body (JSON, or multipart's ``payload_json``), checked like :func:`json_body`."""
    out = await messages.read_body(request)
    limit = emulator(request).proxy_body_limit
    if limit is not None and sum(len(f.data) for f in out.files) > limit:
        raise errors.ProxyRefusal()
    _check_body(request, out.payload)
    return out


def _check_body(request: web.Request, body: Any) -> None:
    rules = emulator(request).body_rules
    if rules is not None:
        rules.check(request.method, request.path[len(API_PREFIX) :], body)


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")
