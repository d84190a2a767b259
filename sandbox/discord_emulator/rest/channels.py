"""Channel routes: messages (JSON or multipart), threads, typing. Bot permissions enforced."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors, messages, payloads
from ..gateway import GUILDS
from ..models import (
    NO_MESSAGES,
    THREAD_PARENTS,
    Application,
    Channel,
    ChannelType,
    Message,
    MessageType,
    ThreadCreation,
)
from ..permissions import Permissions as P
from ..permissions import channel_permissions, has
from .common import (
    RouteTable,
    bot_application,
    emulator,
    json_body,
    json_response,
    message_body,
    no_content,
    snowflake,
)

if TYPE_CHECKING:
    from ..emulator import DiscordEmulator

table = RouteTable()


def bot_permissions(emu: DiscordEmulator, app: Application, channel: Channel) -> int:
    guild = emu.state.guild(channel.guild_id)
    if app.bot.id not in guild.members:
        raise errors.missing_access()
    perms = channel_permissions(guild, channel, app.bot.id, emu.state.parent_of(channel))
    if not perms & P.VIEW_CHANNEL:
        raise errors.missing_access()
    return perms


def require(perms: int, needed: int) -> None:
    if not has(perms, needed):
        raise errors.missing_permissions()


def _context(request: web.Request) -> tuple[DiscordEmulator, Application, Channel, int]:
    emu = emulator(request)
    app = bot_application(request)
    channel = emu.state.channel(snowflake(request, "channel_id"))
    return emu, app, channel, bot_permissions(emu, app, channel)


def _check_writable(channel: Channel, perms: int) -> None:
    if channel.type in NO_MESSAGES:
        raise errors.DiscordError(400, 50008, "Cannot send messages in a non-text channel")
    require(perms, P.SEND_MESSAGES_IN_THREADS if channel.is_thread else P.SEND_MESSAGES)
    # Discord's docs do not say whether a bot's post reopens an archived thread; the
    # reading hardest on the bot is that it is refused, like a locked one.
    locked_out = channel.locked and not perms & P.MANAGE_THREADS
    if channel.is_thread and (channel.archived or locked_out):
        raise errors.DiscordError(400, 50083, "Thread is archived")


def _check_content(
    emu: DiscordEmulator, channel: Channel, perms: int, out: messages.Outgoing
) -> None:
    if out.files:
        require(perms, P.ATTACH_FILES)
        messages.check_files(out.files, emu.state.guild(channel.guild_id).upload_limit)
    if out.payload.get("embeds"):
        require(perms, P.EMBED_LINKS)


@table.route("GET", "/channels/{channel_id}")
async def get_channel(request: web.Request) -> web.Response:
    _, _, channel, _ = _context(request)
    return json_response(payloads.channel(channel))


@table.route("PATCH", "/channels/{channel_id}")
async def edit_channel(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    body: dict[str, Any] = await json_body(request)
    if channel.is_thread:
        if channel.owner_id != app.bot.id or "locked" in body:
            require(perms, P.MANAGE_THREADS)
        for key in ("name", "archived", "locked", "auto_archive_duration"):
            if key in body:
                setattr(channel, key, body[key])
        if "archived" in body:
            channel.archive_timestamp = emu.clock.iso()
        event = "THREAD_UPDATE"
    else:
        require(perms, P.MANAGE_CHANNELS)
        for key in ("name", "topic", "nsfw", "rate_limit_per_user"):
            if key in body:
                setattr(channel, key, body[key])
        event = "CHANNEL_UPDATE"
    emu.gateway.dispatch(event, payloads.channel(channel), guild_id=channel.guild_id, intent=GUILDS)
    return json_response(payloads.channel(channel))


@table.route("POST", "/channels/{channel_id}/typing")
async def typing(request: web.Request) -> web.Response:
    _, _, channel, perms = _context(request)
    _check_writable(channel, perms)
    return no_content()


@table.route("GET", "/channels/{channel_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    emu, _, channel, perms = _context(request)
    require(perms, P.READ_MESSAGE_HISTORY)
    found = emu.state.channel_history(channel.id)
    limit = max(1, min(100, int(request.query.get("limit", "50"))))
    if "before" in request.query:
        found = [m for m in found if m.id < int(request.query["before"])]
    if "after" in request.query:
        found = [m for m in found if m.id > int(request.query["after"])][:limit]
    newest_first = list(reversed(found))[:limit]
    return json_response([payloads.message(emu.state, m) for m in newest_first])


@table.route("POST", "/channels/{channel_id}/messages")
async def create_message(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    _check_writable(channel, perms)
    out = await message_body(request)
    _check_content(emu, channel, perms, out)
    ref = out.payload.get("message_reference")
    if ref and ref.get("message_id") and ref.get("fail_if_not_exists", True):
        emu.state.message(int(ref.get("channel_id") or channel.id), int(ref["message_id"]))
    if channel.is_thread and channel.archived:
        channel.archived = False
    kind = MessageType.REPLY if ref else MessageType.DEFAULT
    message = messages.create(emu, channel=channel, author=app.bot, out=out, msg_type=kind)
    return json_response(payloads.message(emu.state, message))


def _own_message(emu: DiscordEmulator, request: web.Request, channel: Channel) -> Message:
    return emu.state.message(channel.id, snowflake(request, "message_id"))


@table.route("GET", "/channels/{channel_id}/messages/{message_id}")
async def get_message(request: web.Request) -> web.Response:
    emu, _, channel, perms = _context(request)
    require(perms, P.READ_MESSAGE_HISTORY)
    return json_response(payloads.message(emu.state, _own_message(emu, request, channel)))


@table.route("PATCH", "/channels/{channel_id}/messages/{message_id}")
async def edit_message(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    message = _own_message(emu, request, channel)
    if message.author.id != app.bot.id:
        raise errors.cannot_edit_other_user()
    out = await message_body(request)
    _check_content(emu, channel, perms, out)
    return json_response(payloads.message(emu.state, messages.edit(emu, message, out)))


@table.route("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def delete_message(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    message = _own_message(emu, request, channel)
    if message.author.id != app.bot.id:
        require(perms, P.MANAGE_MESSAGES)
    messages.delete(emu, message)
    return no_content()


def _new_thread(
    emu: DiscordEmulator,
    app: Application,
    parent: Channel,
    body: dict[str, Any],
    *,
    thread_id: int,
    kind: int,
    message_id: int | None,
) -> Channel:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise errors.invalid_form(
            "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    now = emu.clock.iso()
    thread = Channel(
        id=thread_id,
        guild_id=parent.guild_id,
        name=name,
        type=kind,
        parent_id=parent.id,
        owner_id=app.bot.id,
        starter_message_id=message_id,
        auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
        archive_timestamp=now,
        created_at=now,
        member_ids={app.bot.id},
    )
    emu.state.channels[thread.id] = thread
    emu.state.guild(parent.guild_id).channel_ids.append(thread.id)
    emu.state.thread_creations.append(
        ThreadCreation(thread.id, parent.id, message_id, app.bot.id, name, now)
    )
    emu.gateway.dispatch(
        "THREAD_CREATE",
        {**payloads.channel(thread), "newly_created": True},
        guild_id=parent.guild_id,
        intent=GUILDS,
    )
    return thread


def _thread_parent(channel: Channel) -> None:
    if channel.type not in THREAD_PARENTS:
        raise errors.DiscordError(400, 50024, "Cannot execute action on this channel type")


@table.route("POST", "/channels/{channel_id}/messages/{message_id}/threads")
async def thread_from_message(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    _thread_parent(channel)
    require(perms, P.CREATE_PUBLIC_THREADS)
    message = _own_message(emu, request, channel)
    if message.thread_id is not None:
        raise errors.thread_already_exists()
    body = await json_body(request)
    thread = _new_thread(
        emu,
        app,
        channel,
        body,
        thread_id=message.id,
        kind=ChannelType.PUBLIC_THREAD,
        message_id=message.id,
    )
    message.thread_id = thread.id
    return json_response(payloads.channel(thread), 201)


@table.route("POST", "/channels/{channel_id}/threads")
async def thread_without_message(request: web.Request) -> web.Response:
    emu, app, channel, perms = _context(request)
    _thread_parent(channel)
    body = await json_body(request)
    kind = int(body.get("type") or ChannelType.PRIVATE_THREAD)
    if kind not in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD):
        raise errors.invalid_form("type", "BASE_TYPE_CHOICES", "Value must be 11 or 12.")
    require(
        perms,
        P.CREATE_PUBLIC_THREADS if kind == ChannelType.PUBLIC_THREAD else P.CREATE_PRIVATE_THREADS,
    )
    thread = _new_thread(
        emu, app, channel, body, thread_id=emu.state.ids.next(), kind=kind, message_id=None
    )
    if kind == ChannelType.PUBLIC_THREAD:
        notice = messages.Outgoing(
            {
                "content": thread.name,
                "message_reference": {
                    "channel_id": str(thread.id),
                    "guild_id": str(thread.guild_id),
                },
            }
        )
        messages.create(
            emu, channel=channel, author=app.bot, out=notice, msg_type=MessageType.THREAD_CREATED
        )
    return json_response(payloads.channel(thread), 201)


@table.route("PUT", "/channels/{channel_id}/thread-members/@me")
async def join_thread(request: web.Request) -> web.Response:
    _, app, channel, _ = _context(request)
    channel.member_ids.add(app.bot.id)
    return no_content()


@table.route("DELETE", "/channels/{channel_id}/thread-members/@me")
async def leave_thread(request: web.Request) -> web.Response:
    _, app, channel, _ = _context(request)
    channel.member_ids.discard(app.bot.id)
    return no_content()
