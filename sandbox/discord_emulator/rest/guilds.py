"""Guild routes a bot reads: the guild, its roles, channels, members and active threads."""

from __future__ import annotations

from aiohttp import web

from .. import errors, payloads
from ..models import Guild
from .common import RouteTable, bot_application, emulator, json_response, snowflake

table = RouteTable()


def _guild(request: web.Request) -> Guild:
    app = bot_application(request)
    guild = emulator(request).state.guild(snowflake(request, "guild_id"))
    if app.bot.id not in guild.members:
        raise errors.missing_access()
    return guild


@table.route("GET", "/guilds/{guild_id}")
async def get_guild(request: web.Request) -> web.Response:
    guild = _guild(request)
    body = payloads.guild(guild)
    if request.query.get("with_counts", "").lower() in ("1", "true"):
        body["approximate_member_count"] = len(guild.members)
        body["approximate_presence_count"] = 0
    return json_response(body)


@table.route("GET", "/guilds/{guild_id}/roles")
async def get_roles(request: web.Request) -> web.Response:
    return json_response([payloads.role(r) for r in _guild(request).roles.values()])


@table.route("GET", "/guilds/{guild_id}/channels")
async def get_channels(request: web.Request) -> web.Response:
    guild = _guild(request)
    state = emulator(request).state
    channels = [state.channels[c] for c in guild.channel_ids if c in state.channels]
    return json_response([payloads.channel(c) for c in channels if not c.is_thread])


@table.route("GET", "/guilds/{guild_id}/threads/active")
async def active_threads(request: web.Request) -> web.Response:
    guild = _guild(request)
    state = emulator(request).state
    threads = [
        state.channels[c]
        for c in guild.channel_ids
        if c in state.channels and state.channels[c].is_thread and not state.channels[c].archived
    ]
    return json_response({"threads": [payloads.channel(t) for t in threads], "members": []})


@table.route("GET", "/guilds/{guild_id}/members/{user_id}")
async def get_member(request: web.Request) -> web.Response:
    guild = _guild(request)
    member = guild.members.get(snowflake(request, "user_id"))
    if member is None:
        raise errors.unknown_member()
    return json_response(payloads.member(member))


@table.route("GET", "/guilds/{guild_id}/members")
async def list_members(request: web.Request) -> web.Response:
    guild = _guild(request)
    limit = max(1, min(1000, int(request.query.get("limit", "1"))))
    after = int(request.query.get("after", "0"))
    members = sorted(
        (m for m in guild.members.values() if m.user.id > after), key=lambda m: m.user.id
    )[:limit]
    return json_response([payloads.member(m) for m in members])
