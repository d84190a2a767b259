"""The emulator's data model: plain dataclasses, owned by one :class:`~.state.EmulatorState`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .cdn import CdnSigner

MIB = 1024 * 1024

#: Upload limit per premium tier. Bots get 10 MiB on unboosted and tier 1 guilds.
PREMIUM_UPLOAD_LIMITS: dict[int, int] = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


class ChannelType(IntEnum):
    """https://discord.com/developers/docs/resources/channel#channel-object-channel-types"""

    GUILD_TEXT = 0
    GUILD_VOICE = 2  # has a text chat: messages and slash commands work there
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11  # also a forum or media channel's post
    PRIVATE_THREAD = 12
    GUILD_STAGE_VOICE = 13  # has a text chat, like a voice channel
    GUILD_FORUM = 15  # holds only threads (posts); no messages of its own
    GUILD_MEDIA = 16  # a forum for media posts


#: Channels whose messages may start a thread (Start Thread from Message).
THREAD_PARENTS = frozenset({ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT})
#: Channels that hold no messages of their own (posting answers 50008).
NO_MESSAGES = frozenset(
    {ChannelType.GUILD_CATEGORY, ChannelType.GUILD_FORUM, ChannelType.GUILD_MEDIA}
)


class MessageFlags(IntEnum):
    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12


class MessageType(IntEnum):
    DEFAULT = 0
    THREAD_CREATED = 18
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    THREAD_STARTER_MESSAGE = 21
    CONTEXT_MENU_COMMAND = 23


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    # The language of the user's Discord client: sent as every interaction's `locale`
    # ("selected language of the invoking user", interactions docs) unless a call overrides it.
    locale: str = "en-US"


@dataclass
class Application:
    id: int
    name: str
    bot: User
    token: str
    owner: User
    description: str = ""
    global_commands: list[dict[str, Any]] = field(default_factory=list)
    guild_commands: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False
    managed: bool = False
    color: int = 0
    hoist: bool = False
    bot_id: int | None = None


@dataclass
class Overwrite:
    id: int
    type: int  # 0 = role, 1 = member
    allow: int = 0
    deny: int = 0


@dataclass
class Channel:
    """A guild channel of any :class:`ChannelType`; a thread (10/11/12) has ``parent_id``."""

    id: int
    guild_id: int
    name: str
    type: int = ChannelType.GUILD_TEXT
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    rate_limit_per_user: int = 0
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    last_message_id: int | None = None
    # thread-only fields
    owner_id: int | None = None
    starter_message_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: str = ""
    created_at: str = ""
    message_count: int = 0
    member_ids: set[int] = field(default_factory=set)

    @property
    def is_thread(self) -> bool:
        return self.type in (10, 11, 12)


@dataclass
class Member:
    guild_id: int
    user: User
    roles: list[int]
    joined_at: str
    nick: str | None = None


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    upload_limit_override: int | None = None
    preferred_locale: str = "en-US"
    # Where Discord posts guild notices (welcome messages, boosts); nullable per the guild
    # object (developers/docs/resources/guild#guild-object, openapi GuildResponse).
    system_channel_id: int | None = None
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)

    @property
    def upload_limit(self) -> int:
        if self.upload_limit_override is not None:
            return self.upload_limit_override
        return PREMIUM_UPLOAD_LIMITS.get(self.premium_tier, 10 * MIB)


@dataclass
class Attachment:
    """A stored file: uploaded by the bot, or added by a test as a user's upload."""

    id: int
    filename: str
    content_type: str
    data: bytes
    url: str  # unsigned: the CDN answers it only with a signature (see cdn.py)
    description: str | None = None
    ephemeral: bool = False
    width: int | None = None
    height: int | None = None
    duration_secs: float | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def signed_url(self, cdn: CdnSigner) -> str:
        """``url`` as Discord hands it out: signed, valid for the CDN's lifetime."""
        return cdn.sign(self.url, urlsplit(self.url).path)

    def to_payload(self, cdn: CdnSigner) -> dict[str, Any]:
        url = self.signed_url(cdn)
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            payload["description"] = self.description
        if self.ephemeral:
            payload["ephemeral"] = True
        if self.width is not None and self.height is not None:
            payload["width"], payload["height"] = self.width, self.height
        if self.duration_secs is not None:
            payload["duration_secs"] = self.duration_secs
        return payload


@dataclass
class MessageRevision:
    """One state of a message; ``Message.history[0]`` is the original."""

    at: str
    content: str
    embeds: list[dict[str, Any]]
    attachment_ids: list[int]
    components: list[dict[str, Any]]
    flags: int


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author: User
    timestamp: str
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    type: int = MessageType.DEFAULT
    tts: bool = False
    nonce: str | None = None
    edited_timestamp: str | None = None
    pinned: bool = False
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    #: ``allowed_mentions`` exactly as the bot sent it (None when it sent none).
    allowed_mentions: dict[str, Any] | None = None
    mentions: list[int] = field(default_factory=list)
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    #: Users who would actually get a notification from this message.
    pinged_user_ids: list[int] = field(default_factory=list)
    history: list[MessageRevision] = field(default_factory=list)
    deleted: bool = False
    #: For ephemeral messages: the only user who can see it.
    visible_to: int | None = None
    thread_id: int | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlags.EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & MessageFlags.LOADING)

    @property
    def edits(self) -> int:
        return len(self.history) - 1

    def snapshot(self, at: str) -> None:
        self.history.append(
            MessageRevision(
                at=at,
                content=self.content,
                embeds=[dict(e) for e in self.embeds],
                attachment_ids=[a.id for a in self.attachments],
                components=list(self.components),
                flags=self.flags,
            )
        )


@dataclass
class RestCall:
    """One request to ``/api/v10`` as the emulator saw it."""

    method: str
    path: str
    route: str
    status: int
    code: int | None
    timestamp: float
    monotonic: float
    query: dict[str, str]
    bucket: str | None = None
    ratelimit_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ThreadCreation:
    thread_id: int
    parent_id: int
    message_id: int | None
    owner_id: int
    name: str
    at: str


@dataclass
class Download:
    attachment_id: int
    filename: str
    status: int
    monotonic: float
