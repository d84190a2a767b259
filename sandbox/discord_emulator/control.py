"""The control API over HTTP under ``/_control/`` (for a bot running in another process).

Everything here maps onto a :class:`~.emulator.DiscordEmulator` method; ids are strings in
answers, like Discord's. ``GET /_control/wait?since=N&timeout=T`` long-polls until the state
version passes ``N``, so an out-of-process driver can wait without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import payloads
from .commands import CommandError
from .errors import DiscordError
from .interactions import InteractionRecord
from .models import Guild, Message
from .rest.common import EMULATOR, json_response

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

PREFIX = "/_control"
ControlHandler = Callable[["DiscordEmulator", web.Request, dict[str, Any]], Awaitable[Any]]


def describe_message(emu: DiscordEmulator, message: Message) -> dict[str, Any]:
    return {
        **payloads.message(emu.state, message),
        "ephemeral": message.ephemeral,
        "loading": message.loading,
        "deleted": message.deleted,
        "visible_to": str(message.visible_to) if message.visible_to else None,
        "allowed_mentions_sent": message.allowed_mentions,
        "pinged_user_ids": [str(u) for u in message.pinged_user_ids],
        "interaction_id": str(message.interaction_id) if message.interaction_id else None,
        "history": [asdict(r) for r in message.history],
    }


def describe_interaction(emu: DiscordEmulator, ix: InteractionRecord) -> dict[str, Any]:
    return {
        "id": str(ix.id),
        "type": ix.type,
        "name": ix.name,
        "user_id": str(ix.user_id),
        "channel_id": str(ix.channel_id),
        "acknowledged": ix.acknowledged,
        "ack_type": ix.ack_type,
        "ack_latency": ix.ack_latency,
        "original_message_id": str(ix.original_message_id) if ix.original_message_id else None,
        "thinking_replaced": ix.thinking_replaced,
        "modal": ix.modal,
        "errors": ix.errors,
        "attempts": [asdict(a) for a in ix.attempts],
        "responses": [describe_message(emu, m) for m in ix.responses],
    }


def describe_guild(emu: DiscordEmulator, guild: Guild) -> dict[str, Any]:
    return {
        **payloads.guild(guild),
        "upload_limit": guild.upload_limit,
        "channels": [payloads.channel(emu.state.channels[c]) for c in guild.channel_ids],
        "members": [payloads.member(m) for m in guild.members.values()],
    }


def _int(value: Any) -> int:
    return int(value)


async def _state(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    return {
        "version": emu.state.version,
        "api_base": emu.api_base,
        "gateway_url": emu.gateway_url,
        "applications": [
            {"id": str(a.id), "name": a.name, "bot_id": str(a.bot.id)}
            for a in emu.state.applications.values()
        ],
        "guilds": [describe_guild(emu, g) for g in emu.state.guilds.values()],
        # Which shards are connected now: a bot of several processes is up once all are.
        "gateway_sessions": [
            {
                "application_id": str(app.id), "shard": list(session.shard),
                "ready": session.ready, "connected": session.connection is not None,
            }
            for app in emu.state.applications.values()
            for session in emu.gateway.sessions_for(app.id)
        ],
    }


async def _create_application(
    emu: DiscordEmulator, request: web.Request, body: dict[str, Any]
) -> Any:
    app = emu.create_application(body.get("name", "Kling"), body.get("bot_token"))
    return {"id": str(app.id), "bot_id": str(app.bot.id), "token": app.token}


async def _create_guild(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    kwargs = {
        k: body[k]
        for k in ("premium_tier", "upload_limit", "bot_permissions", "everyone_permissions")
        if k in body
    }
    owner = _int(body["owner_id"]) if body.get("owner_id") else None
    guild = emu.create_guild(body.get("name", "Test Guild"), owner_id=owner, **kwargs)
    return describe_guild(emu, guild)


async def _patch_guild(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    guild_id = _int(request.match_info["guild_id"])
    if "premium_tier" in body:
        emu.set_premium_tier(guild_id, int(body["premium_tier"]))
    if "upload_limit" in body:
        emu.set_upload_limit(guild_id, body["upload_limit"])
    if "system_channel_id" in body:
        channel = body["system_channel_id"]
        emu.set_system_channel(guild_id, None if channel is None else _int(channel))
    return describe_guild(emu, emu.state.guild(guild_id))


async def _create_channel(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    channel = emu.create_text_channel(
        _int(request.match_info["guild_id"]), body.get("name", "general"), topic=body.get("topic")
    )
    return payloads.channel(channel)


async def _create_role(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    role = emu.create_role(
        _int(request.match_info["guild_id"]),
        body["name"],
        int(body.get("permissions", 0)),
        mentionable=bool(body.get("mentionable", False)),
    )
    return payloads.role(role)


async def _create_member(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    perms = body.get("permissions")
    member = emu.create_member(
        _int(request.match_info["guild_id"]),
        body.get("username"),
        roles=[int(r) for r in body.get("roles", [])],
        permissions=int(perms) if perms is not None else None,
    )
    return payloads.member(member)


async def _set_overwrite(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    overwrite = emu.set_overwrite(
        _int(request.match_info["channel_id"]),
        _int(request.match_info["target_id"]),
        allow=int(body.get("allow", 0)),
        deny=int(body.get("deny", 0)),
        target_type=body.get("type"),
    )
    return payloads.overwrite(overwrite)


async def _upload(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    att = emu.add_attachment(
        request.query.get("filename", "file.bin"),
        await request.read(),
        content_type=request.query.get("content_type"),
    )
    return att.to_payload(emu.state.cdn)


async def _slash(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    ix = await emu.send_slash_command(
        _int(body["guild_id"]),
        _int(body["channel_id"]),
        _int(body["user_id"]),
        body["name"],
        body.get("options") or {},
        locale=body.get("locale"),
    )
    return describe_interaction(emu, ix)


async def _message_command(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    ix = await emu.send_message_command(
        _int(body["guild_id"]),
        _int(body["channel_id"]),
        _int(body["user_id"]),
        body["name"],
        _int(body["message_id"]),
    )
    return describe_interaction(emu, ix)


async def _component(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    args = (
        _int(body["channel_id"]),
        _int(body["user_id"]),
        _int(body["message_id"]),
        body["custom_id"],
    )
    if "values" in body:
        ix = await emu.select_menu(*args, body["values"])
    else:
        ix = await emu.click_button(*args)
    return describe_interaction(emu, ix)


async def _modal(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    ix = await emu.submit_modal(_int(request.match_info["interaction_id"]), body["values"])
    return describe_interaction(emu, ix)


async def _interaction(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    return describe_interaction(emu, emu.interaction(_int(request.match_info["interaction_id"])))


async def _interactions(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    return [describe_interaction(emu, ix) for ix in emu.interactions]


async def _messages(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    viewer = request.query.get("visible_to")
    found = emu.messages(
        _int(request.match_info["channel_id"]),
        include_deleted=request.query.get("include_deleted") == "1",
        visible_to=int(viewer) if viewer else None,
    )
    return [describe_message(emu, m) for m in found]


async def _threads(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    parent = request.query.get("parent_id")
    return [payloads.channel(t) for t in emu.threads(int(parent) if parent else None)]


async def _rest_calls(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    status = request.query.get("status")
    calls = emu.rest_calls(
        request.query.get("method"), request.query.get("route"), int(status) if status else None
    )
    return [asdict(c) for c in calls]


async def _wait(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    since = int(request.query.get("since", emu.state.version))
    timeout = min(60.0, float(request.query.get("timeout", "10")))
    return {"version": await emu.state.wait_changed(since, timeout)}


async def _disconnect(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    closed = await emu.disconnect_gateway(
        int(body.get("code", 4000)), invalidate=bool(body.get("invalidate", False))
    )
    return {"closed": closed}


async def _advance(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    emu.advance(float(body["seconds"]))
    return {"offset": emu.clock.offset}


async def _rate_limits(emu: DiscordEmulator, request: web.Request, body: dict[str, Any]) -> Any:
    emu.set_rate_limits(bool(body.get("enabled", True)))
    return {"rules": [asdict(r) for r in emu.ratelimiter.rules]}


ROUTES: tuple[tuple[str, str, ControlHandler], ...] = (
    ("GET", "/state", _state),
    ("POST", "/applications", _create_application),
    ("POST", "/guilds", _create_guild),
    ("PATCH", "/guilds/{guild_id}", _patch_guild),
    ("POST", "/guilds/{guild_id}/channels", _create_channel),
    ("POST", "/guilds/{guild_id}/roles", _create_role),
    ("POST", "/guilds/{guild_id}/members", _create_member),
    ("PUT", "/channels/{channel_id}/overwrites/{target_id}", _set_overwrite),
    ("GET", "/channels/{channel_id}/messages", _messages),
    ("GET", "/threads", _threads),
    ("POST", "/attachments", _upload),
    ("POST", "/interactions/slash", _slash),
    ("POST", "/interactions/message-command", _message_command),
    ("POST", "/interactions/component", _component),
    ("POST", "/interactions/{interaction_id}/modal", _modal),
    ("GET", "/interactions", _interactions),
    ("GET", "/interactions/{interaction_id}", _interaction),
    ("GET", "/rest-calls", _rest_calls),
    ("GET", "/wait", _wait),
    ("POST", "/gateway/disconnect", _disconnect),
    ("POST", "/clock/advance", _advance),
    ("PUT", "/rate-limits", _rate_limits),
)


def _wrap(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        emu = request.app[EMULATOR]
        try:
            body: dict[str, Any] = {}
            if request.content_type == "application/json" and request.can_read_body:
                body = json.loads(await request.read() or b"{}")
            return json_response(await handler(emu, request, body))
        except DiscordError as exc:
            return json_response(exc.body(), exc.status)
        except (CommandError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)

    return wrapped


def setup(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, PREFIX + path, _wrap(handler))
