"""Reading, validating, creating and editing messages (shared by channel and webhook routes).

Also publishes MESSAGE_CREATE/UPDATE/DELETE on the gateway, never for ephemeral messages.
"""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from . import errors, mentions, payloads
from .components import check_message_layout
from .gateway import GUILD_MESSAGES
from .models import Attachment, Channel, Message, MessageFlags, User
from .permissions import channel_permissions

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

MAX_CONTENT = 2000
MAX_EMBEDS = 10
_EXTRA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".webp": "image/webp",
    ".mkv": "video/x-matroska",
}


@dataclass
class UploadedFile:
    index: int
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class Outgoing:
    """A message body as the bot sent it: JSON payload plus multipart files."""

    payload: dict[str, Any]
    files: list[UploadedFile] = field(default_factory=list)


async def read_body(request: web.Request) -> Outgoing:
    """Parse a JSON body, or multipart with ``payload_json`` and ``files[n]`` parts."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        payload: dict[str, Any] = {}
        files: list[UploadedFile] = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = await part.read(decode=False)
            if name == "payload_json":
                payload = _loads(bytes(data))
            elif name.startswith("file"):
                index = _file_index(name, len(files))
                ctype = part.headers.get("Content-Type")
                files.append(
                    UploadedFile(index, part.filename or f"file{index}", bytes(data), ctype)
                )
        return Outgoing(payload, files)
    raw = await request.read()
    return Outgoing(_loads(raw) if raw else {})


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise errors.DiscordError(400, 50109, "The request body contains invalid JSON.") from None
    if not isinstance(value, dict):
        raise errors.DiscordError(400, 50109, "The request body contains invalid JSON.")
    return value


def _file_index(name: str, default: int) -> int:
    match = re.search(r"\[(\d+)\]", name)
    return int(match.group(1)) if match else default


def check_files(files: list[UploadedFile], limit: int) -> None:
    """413 / 40005 when any file exceeds the upload limit."""
    if any(len(f.data) > limit for f in files):
        raise errors.entity_too_large()


def validate_payload(payload: dict[str, Any], flags: int, *, at: str = "") -> None:
    """Refuse what Discord refuses in a message body; ``at`` prefixes the field names
    (``data.`` when the message is an interaction callback's ``data``)."""
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        raise errors.invalid_form(
            f"{at}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    embeds = payload.get("embeds")
    if embeds is not None and len(embeds) > MAX_EMBEDS:
        raise errors.invalid_form(
            f"{at}embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
        )
    if payload.get("components"):
        check_message_layout(payload["components"], flags, f"{at}components")


def content_type_for(filename: str, sent: str | None) -> str:
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    guessed = _EXTRA_TYPES.get(ext) or mimetypes.guess_type(filename)[0]
    if guessed:
        return guessed
    if sent and sent != "application/octet-stream":
        return sent
    return "application/octet-stream"


def store_file(
    emu: DiscordEmulator,
    *,
    filename: str,
    data: bytes,
    content_type: str | None,
    scope: str,
    description: str | None = None,
    ephemeral: bool = False,
) -> Attachment:
    """Keep a file and make it downloadable from the CDN route."""
    att_id = emu.state.ids.next()
    safe = re.sub(r"[^\w.\-]", "_", filename) or "file"
    url = f"{emu.base_url}/attachments/{scope}/{att_id}/{quote(safe)}"
    att = Attachment(
        att_id,
        safe,
        content_type_for(filename, content_type),
        data,
        url,
        description=description,
        ephemeral=ephemeral,
    )
    emu.state.attachments[att_id] = att
    return att


def _attachments(
    emu: DiscordEmulator, out: Outgoing, *, scope: str, ephemeral: bool, existing: list[Attachment]
) -> list[Attachment] | None:
    """The attachment list after this request, or None when the request leaves it alone.

    ``attachments`` entries whose id is a file index are new uploads, entries with an
    existing attachment id keep that attachment; without the array, files are appended.
    """
    listed = out.payload.get("attachments")
    if listed is None and not out.files:
        return None
    by_index = {f.index: f for f in out.files}
    keep = {a.id: a for a in existing}
    result = list(existing) if listed is None else []
    used: set[int] = set()

    def new(upload: UploadedFile, entry: dict[str, Any]) -> Attachment:
        return store_file(
            emu,
            filename=entry.get("filename") or upload.filename,
            data=upload.data,
            content_type=upload.content_type,
            scope=scope,
            description=entry.get("description"),
            ephemeral=ephemeral,
        )

    for entry in listed or []:
        raw_id = int(entry.get("id", -1))
        if raw_id in by_index and raw_id not in used:
            used.add(raw_id)
            result.append(new(by_index[raw_id], entry))
        elif raw_id in keep:
            result.append(keep[raw_id])
    for index, upload in by_index.items():
        if index not in used:
            result.append(new(upload, {}))
    return result


def _compute_mentions(emu: DiscordEmulator, message: Message, *, notify: bool) -> None:
    state = emu.state
    guild = state.guilds.get(message.guild_id) if message.guild_id is not None else None
    perms = 0
    channel = state.channels.get(message.channel_id)
    if guild is not None and channel is not None:
        perms = channel_permissions(guild, channel, message.author.id, state.parent_of(channel))
    replied = None
    ref = message.message_reference
    if ref and ref.get("message_id"):
        target = state.messages.get(int(ref["message_id"]))
        replied = target.author.id if target is not None else None
    result = mentions.resolve(
        content=message.content,
        allowed=message.allowed_mentions,
        guild=guild,
        author_id=message.author.id,
        author_permissions=perms,
        known_users=set(state.users),
        replied_user_id=replied,
    )
    mentions.apply(message, result, notify=notify)


def create(
    emu: DiscordEmulator,
    *,
    channel: Channel,
    author: User,
    out: Outgoing,
    msg_type: int = 0,
    flags: int | None = None,
    visible_to: int | None = None,
    preset_attachments: list[Attachment] | None = None,
    at: str = "",
    **extra: Any,
) -> Message:
    """Build, store and publish a message from a bot's request body (``at``: see
    :func:`validate_payload`)."""
    payload = out.payload
    if flags is None:
        flags = int(payload.get("flags") or 0) & ~MessageFlags.LOADING
    validate_payload(payload, flags, at=at)
    ephemeral = bool(flags & MessageFlags.EPHEMERAL)
    message = Message(
        id=emu.state.ids.next(),
        channel_id=channel.id,
        guild_id=channel.guild_id,
        author=author,
        timestamp=emu.clock.iso(),
        content=str(payload.get("content") or ""),
        embeds=list(payload.get("embeds") or []),
        components=list(payload.get("components") or []),
        flags=flags,
        type=msg_type,
        tts=bool(payload.get("tts", False)),
        nonce=payload.get("nonce"),
        allowed_mentions=payload.get("allowed_mentions"),
        message_reference=payload.get("message_reference"),
        visible_to=visible_to if ephemeral else None,
        **extra,
    )
    attachments = _attachments(emu, out, scope=str(channel.id), ephemeral=ephemeral, existing=[])
    message.attachments = (preset_attachments or []) + (attachments or [])
    loading = bool(flags & MessageFlags.LOADING)
    if not loading and not (
        message.content.strip()
        or message.embeds
        or message.attachments
        or message.components
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise errors.empty_message()
    _compute_mentions(emu, message, notify=not loading)
    emu.state.add_message(message)
    publish(emu, "MESSAGE_CREATE", message)
    return message


def edit(emu: DiscordEmulator, message: Message, out: Outgoing, *, at: str = "") -> Message:
    """Apply a PATCH body to a message, keep the revision, publish MESSAGE_UPDATE."""
    payload = out.payload
    # IS_COMPONENTS_V2 "can't be removed from that message" once set (Component Reference).
    validate_payload(payload, message.flags | int(payload.get("flags") or 0), at=at)
    was_loading = message.loading
    attachments = _attachments(
        emu,
        out,
        scope=str(message.channel_id),
        ephemeral=message.ephemeral,
        existing=message.attachments,
    )
    content = message.content if "content" not in payload else str(payload["content"] or "")
    embeds = message.embeds if "embeds" not in payload else list(payload["embeds"] or [])
    components = (
        message.components if "components" not in payload else list(payload["components"] or [])
    )
    new_attachments = message.attachments if attachments is None else attachments
    if not (content.strip() or embeds or new_attachments or components):
        raise errors.empty_message()
    message.content, message.embeds, message.components = content, embeds, components
    message.attachments = new_attachments
    if "allowed_mentions" in payload:
        message.allowed_mentions = payload["allowed_mentions"]
    if "flags" in payload and payload["flags"] is not None:
        keep = MessageFlags.EPHEMERAL | MessageFlags.LOADING
        message.flags = (message.flags & keep) | (int(payload["flags"]) & ~keep)
    message.flags &= ~MessageFlags.LOADING
    message.edited_timestamp = None if was_loading else emu.clock.iso()
    _compute_mentions(emu, message, notify=was_loading)
    message.snapshot(emu.clock.iso())
    publish(emu, "MESSAGE_UPDATE", message)
    return message


def delete(emu: DiscordEmulator, message: Message) -> None:
    message.deleted = True
    if not message.ephemeral:
        data: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        emu.gateway.dispatch(
            "MESSAGE_DELETE", data, guild_id=message.guild_id, intent=GUILD_MESSAGES
        )


def publish(emu: DiscordEmulator, event: str, message: Message) -> None:
    if message.ephemeral or message.guild_id is None:
        return
    emu.gateway.dispatch(
        event,
        payloads.message(emu.state, message, gateway=True),
        guild_id=message.guild_id,
        intent=GUILD_MESSAGES,
    )
