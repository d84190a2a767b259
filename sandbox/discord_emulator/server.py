"""The aiohttp application: REST under /api/v10, the gateway, the attachment CDN, control.

One middleware wraps every ``/api/v10`` call: Discord-style JSON errors (404 for unknown
routes), bot-token auth (except interaction and webhook routes), rate limits, and the
record of every call.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING

from aiohttp import web

from . import control, errors
from .models import Download, RestCall
from .ratelimit import Decision
from .rest import API_PREFIX, TABLES
from .rest.common import EMULATOR, RECEIVED, Handler, authenticate, json_response

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

log = logging.getLogger(__name__)

_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/")
_USER_AGENT = re.compile(r"^DiscordBot \(\S+,? [^)]+\)")
_NO_AUTH_ROUTES = {"/gateway"}


def _error_response(exc: errors.DiscordError) -> web.Response:
    return json_response(exc.body(), exc.status)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX + "/"):
        return await handler(request)
    emu = request.app[EMULATOR]
    request[RECEIVED] = time.monotonic()
    info = request.match_info
    template = ""
    if info.http_exception is None and info.route.resource is not None:
        template = info.route.resource.canonical[len(API_PREFIX) :]
    rate_headers: dict[str, str] = {}
    bucket: str | None = None
    response: web.StreamResponse
    try:
        if info.http_exception is not None:
            status = info.http_exception.status
            raise errors.DiscordError(status, 0, f"{status}: {info.http_exception.reason}")
        limiter = emu.ratelimiter
        if template not in _NO_AUTH_ROUTES and not template.startswith(_NO_AUTH_PREFIXES):
            app = authenticate(request)
            _check_user_agent(request)
            if limiter.global_rule is not None:  # interaction routes are exempt
                _limit(limiter.check(limiter.global_rule, str(app.id), request.method,
                                     request.path), is_global=True)
        fault = emu.take_fault(request.method, template)
        if fault is not None:
            raise fault
        rule = limiter.rule_for(request.method, template)
        if rule is not None:
            scope = info.get(rule.scope, "") if rule.scope else ""
            decision = limiter.check(rule, scope, request.method, request.path)
            rate_headers, bucket = decision.headers, decision.bucket
            _limit(decision, is_global=False)
        response = await handler(request)
    except _RateLimited as limited:
        response = limited.response
    except errors.ProxyRefusal:
        # A proxy in front of the API (nginx, a CDN) refused the body itself: a bare 413
        # page, no Discord error code.
        response = web.Response(
            status=413, text="<html><body>413 Request Entity Too Large</body></html>",
            content_type="text/html",
        )
    except errors.DiscordError as exc:
        response = _error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        response = _error_response(errors.entity_too_large())
    except web.HTTPException as exc:
        response = _error_response(
            errors.DiscordError(exc.status, 0, f"{exc.status}: {exc.reason}")
        )
    except Exception as exc:  # a bug in the emulator: answer 500 and keep it for the tests
        log.exception("emulator error handling %s %s", request.method, request.path)
        emu.state.internal_errors.append(f"{request.method} {request.path}: {exc!r}")
        response = _error_response(errors.DiscordError(500, 0, "500: Internal Server Error"))
    response.headers.update(rate_headers)
    code = None
    if response.status >= 400 and isinstance(response, web.Response) and response.body:
        code = _code_of(response)
    emu.state.rest_calls.append(
        RestCall(
            method=request.method,
            path=request.path[len(API_PREFIX) :],
            route=template,
            status=response.status,
            code=code,
            timestamp=time.time(),
            monotonic=request[RECEIVED],
            query=dict(request.query),
            bucket=bucket,
            ratelimit_headers=rate_headers,
        )
    )
    emu.state.changed()
    return response


def _check_user_agent(request: web.Request) -> None:
    """https://discord.com/developers/docs/reference#user-agent: clients of the HTTP API
    "must provide a valid User Agent", `DiscordBot ($url, $versionNumber)`. The docs do not
    say how Discord answers one that does not; the reading hardest on a client is a refusal.
    Bot-token routes only: discord.py's webhook adapter (interaction responses) sends none,
    and works on Discord."""
    if not _USER_AGENT.match(request.headers.get("User-Agent", "")):
        raise errors.DiscordError(403, 0, "403: Forbidden (User-Agent must be DiscordBot)")


def _limit(decision: Decision, *, is_global: bool) -> None:
    if decision.allowed:
        return
    body = {
        "message": "You are being rate limited.",
        "retry_after": decision.retry_after,
        "global": is_global,
        "code": 0,
    }
    raise _RateLimited(json_response(body, 429, headers=decision.headers))


class _RateLimited(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__("rate limited")
        self.response = response


def _code_of(response: web.Response) -> int | None:
    try:
        body = json.loads(bytes(response.body))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return body.get("code") if isinstance(body, dict) else None


async def cdn_attachment(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMULATOR]
    att_id = request.match_info["attachment_id"]
    att = emu.state.attachments.get(int(att_id)) if att_id.isdigit() else None
    signed = emu.state.cdn.valid(request.rel_url.raw_path, request.query)
    if att is None or att.filename != request.match_info["filename"] or not signed:
        emu.state.downloads.append(
            Download(
                int(att_id) if att_id.isdigit() else 0,
                request.match_info["filename"],
                404,
                time.monotonic(),
            )
        )
        emu.state.changed()
        return web.Response(status=404, text="This content is no longer available.")
    emu.state.downloads.append(Download(att.id, att.filename, 200, time.monotonic()))
    emu.state.changed()
    headers = {
        "Content-Disposition": f'attachment; filename="{att.filename}"',
        "Cache-Control": "public, max-age=31536000",
    }
    return web.Response(body=att.data, content_type=att.content_type, headers=headers)


def build_app(emu: DiscordEmulator, *, max_request_size: int) -> web.Application:
    app = web.Application(middlewares=[api_middleware], client_max_size=max_request_size)
    app[EMULATOR] = emu
    for table in TABLES:
        for method, path, handler in table.routes:
            app.router.add_route(method, API_PREFIX + path, handler)
    app.router.add_get("/gateway", emu.gateway.handle)
    app.router.add_get(
        "/attachments/{scope}/{attachment_id}/{filename}", cdn_attachment, allow_head=True
    )
    control.setup(app)
    return app
