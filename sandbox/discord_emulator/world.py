"""Building the world: applications, guilds, channels, roles, members, overwrites, uploads.

Changes made after a bot connected are announced on the gateway like Discord does
(GUILD_CREATE, CHANNEL_CREATE/UPDATE, GUILD_ROLE_CREATE/UPDATE, GUILD_MEMBER_ADD,
GUILD_UPDATE, MESSAGE_CREATE), so the bot's cache stays coherent.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, cast

from . import messages, payloads
from .driver import Ref, ref_id
from .gateway import GUILD_MEMBERS, GUILDS
from .models import (
    THREAD_PARENTS,
    Application,
    Attachment,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageType,
    Overwrite,
    Role,
    User,
)
from .permissions import DEFAULT_BOT, DEFAULT_EVERYONE

if TYPE_CHECKING:
    from .clock import Clock
    from .emulator import DiscordEmulator
    from .gateway import GatewayHub
    from .state import EmulatorState


class WorldMixin:
    """Setup methods of :class:`~.emulator.DiscordEmulator`."""

    state: EmulatorState
    gateway: GatewayHub
    clock: Clock

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    @property
    def _emu(self) -> DiscordEmulator:
        return cast("DiscordEmulator", self)

    # -- users and applications ----------------------------------------------------------

    def create_user(
        self, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> User:
        user = User(self.state.ids.next(), username, bot=bot, global_name=global_name)
        self.state.users[user.id] = user
        self.state.changed()
        return user

    def create_application(
        self,
        name: str = "Kling",
        bot_token: str | None = None,
        *,
        bot_username: str | None = None,
        join_guilds: bool = True,
    ) -> Application:
        """An application whose bot user has the application's id; joins existing guilds."""
        app_id = self.state.ids.next()
        bot = User(app_id, bot_username or name, bot=True)
        self.state.users[bot.id] = bot
        owner = self.create_user(f"{name.lower()}-owner")
        token = bot_token or ".".join(
            (
                base64.urlsafe_b64encode(str(app_id).encode()).decode().rstrip("="),
                secrets.token_urlsafe(6),
                secrets.token_urlsafe(27),
            )
        )
        app = Application(app_id, name, bot, token, owner)
        self.state.applications[app.id] = app
        if join_guilds:
            for guild in list(self.state.guilds.values()):
                self.add_bot(guild.id, app)
        self.state.changed()
        return app

    # -- guilds --------------------------------------------------------------------------

    def create_guild(
        self,
        name: str = "Test Guild",
        *,
        owner_id: int | None = None,
        premium_tier: int = 0,
        upload_limit: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE,
        bot_permissions: int = DEFAULT_BOT,
        add_bots: bool = True,
    ) -> Guild:
        """A guild with @everyone (id = guild id), an owner, and every application's bot."""
        guild_id = self.state.ids.next()
        if owner_id is None:
            owner_id = self.create_user(f"{name.lower().replace(' ', '-')}-owner").id
        guild = Guild(
            guild_id, name, owner_id, premium_tier=premium_tier, upload_limit_override=upload_limit
        )
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", everyone_permissions)
        self.state.guilds[guild_id] = guild
        self._join(guild, self.state.users[owner_id], [])
        if add_bots:
            for app in self.state.applications.values():
                self.add_bot(guild_id, app, permissions=bot_permissions, announce=False)
        self._announce_guild(guild)
        self.state.changed()
        return guild

    def _join(
        self, guild: Guild, user: User, roles: list[int], joined_at: str | None = None
    ) -> Member:
        member = Member(guild.id, user, roles, joined_at=joined_at or self.clock.iso())
        guild.members[user.id] = member
        return member

    def _announce_guild(self, guild: Guild) -> None:
        for session in self.gateway.sessions.values():
            if (
                session.app.bot.id in guild.members
                and not session.invalid
                and (session.intents & GUILDS)
            ):
                session.push(
                    "GUILD_CREATE",
                    payloads.gateway_guild(
                        self.state,
                        guild,
                        bot_user_id=session.app.bot.id,
                        all_members=bool(session.intents & GUILD_MEMBERS),
                        joined=True,
                    ),
                )

    def add_bot(
        self,
        guild_id: int,
        app: Application,
        *,
        permissions: int = DEFAULT_BOT,
        announce: bool = True,
        joined_at: str | None = None,
    ) -> Member:
        """Add an application's bot with a managed role granting ``permissions``;
        ``joined_at`` (ISO-8601) backdates the join, for a server it has been in a while."""
        guild = self.state.guild(guild_id)
        if app.bot.id in guild.members:
            return guild.members[app.bot.id]
        role = Role(
            self.state.ids.next(),
            guild_id,
            app.name,
            permissions,
            position=1,
            managed=True,
            bot_id=app.bot.id,
        )
        guild.roles[role.id] = role
        member = self._join(guild, app.bot, [role.id], joined_at)
        if announce:
            self._announce_guild(guild)
        self.state.changed()
        return member

    def bot_role(self, guild_id: int, app: Application) -> Role:
        guild = self.state.guild(guild_id)
        return next(r for r in guild.roles.values() if r.bot_id == app.bot.id)

    def set_premium_tier(self, guild_id: int, tier: int) -> None:
        """Boost level 0-3; the upload limit follows (10, 10, 50, 100 MiB)."""
        guild = self.state.guild(guild_id)
        guild.premium_tier = tier
        self._guild_updated(guild)

    def set_upload_limit(self, guild_id: int, limit: int | None) -> None:
        """Override the upload limit in bytes (None: back to the premium tier's)."""
        guild = self.state.guild(guild_id)
        guild.upload_limit_override = limit
        self._guild_updated(guild)

    def set_system_channel(self, guild_id: int, channel_id: int | None) -> None:
        """The guild's system channel (Server Settings → Overview → System Messages Channel):
        one of its text channels, or none. Discord's guild PATCH takes only a text channel
        of the guild here (``system_channel_id``, GuildPatchRequestPartial)."""
        guild = self.state.guild(guild_id)
        if channel_id is not None:
            channel = self.state.channel(channel_id)
            if channel.guild_id != guild_id or channel.type is not ChannelType.GUILD_TEXT:
                raise ValueError(f"channel {channel_id} is not a text channel of {guild_id}")
        guild.system_channel_id = channel_id
        self._guild_updated(guild)

    def _guild_updated(self, guild: Guild) -> None:
        self.gateway.dispatch(
            "GUILD_UPDATE", payloads.guild(guild), guild_id=guild.id, intent=GUILDS
        )
        self.state.changed()

    # -- channels, roles, members --------------------------------------------------------

    def create_text_channel(
        self,
        guild_id: int,
        name: str = "general",
        *,
        topic: str | None = None,
        parent_id: int | None = None,
        kind: ChannelType = ChannelType.GUILD_TEXT,
    ) -> Channel:
        """A channel that is not a thread: text by default, or a voice, stage, announcement,
        forum or media channel (``kind``)."""
        guild = self.state.guild(guild_id)
        position = sum(1 for c in guild.channel_ids if not self.state.channels[c].is_thread)
        channel = Channel(
            self.state.ids.next(),
            guild_id,
            name,
            kind,
            position=position,
            parent_id=parent_id,
            topic=topic,
        )
        self.state.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self.gateway.dispatch(
            "CHANNEL_CREATE", payloads.channel(channel), guild_id=guild_id, intent=GUILDS
        )
        self.state.changed()
        return channel

    def create_forum_post(
        self, forum: Ref, name: str, author: Ref, content: str = "post"
    ) -> Channel:
        """A member's post in a forum or media channel: a public thread whose starter
        message (same id as the thread) is the post itself."""
        parent = self.state.channel(ref_id(forum))
        if parent.type not in (ChannelType.GUILD_FORUM, ChannelType.GUILD_MEDIA):
            raise ValueError(f"channel {parent.id} is not a forum or media channel")
        user = self.state.users[ref_id(author)]
        thread = self._member_thread(parent, name, user, ChannelType.PUBLIC_THREAD)
        thread.starter_message_id = thread.id
        self.state.add_message(
            Message(thread.id, thread.id, parent.guild_id, user, self.clock.iso(), content=content)
        )
        self._announce_thread(thread)
        return thread

    def create_thread(
        self, parent: Ref, name: str, author: Ref, *, private: bool = False
    ) -> Channel:
        """A member's own thread in a text or announcement channel, started without a
        message; a public one leaves a type 18 notice in the channel, as Discord does."""
        channel = self.state.channel(ref_id(parent))
        if channel.type not in THREAD_PARENTS:
            raise ValueError(f"channel {channel.id} cannot hold threads")
        kind = ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD
        user = self.state.users[ref_id(author)]
        thread = self._member_thread(channel, name, user, kind)
        if not private:
            messages.create(
                self._emu, channel=channel, author=user,
                out=messages.Outgoing({"content": name, "message_reference": {
                    "channel_id": str(thread.id), "guild_id": str(thread.guild_id)}}),
                msg_type=MessageType.THREAD_CREATED, flags=0,
            )
        self._announce_thread(thread)
        return thread

    def _member_thread(
        self, parent: Channel, name: str, user: User, kind: ChannelType
    ) -> Channel:
        now = self.clock.iso()
        thread = Channel(
            self.state.ids.next(), parent.guild_id, name, kind,
            parent_id=parent.id, owner_id=user.id, archive_timestamp=now, created_at=now,
            member_ids={user.id},
        )
        self.state.channels[thread.id] = thread
        self.state.guild(parent.guild_id).channel_ids.append(thread.id)
        return thread

    def _announce_thread(self, thread: Channel) -> None:
        self.gateway.dispatch(
            "THREAD_CREATE", {**payloads.channel(thread), "newly_created": True},
            guild_id=thread.guild_id, intent=GUILDS,
        )
        self.state.changed()

    def archive_thread(self, thread: Ref, *, locked: bool = False) -> None:
        """Archive a thread (and lock it: only Manage Threads may reopen it)."""
        channel = self.state.channel(ref_id(thread))
        channel.archived, channel.locked = True, locked or channel.locked
        channel.archive_timestamp = self.clock.iso()
        self.gateway.dispatch(
            "THREAD_UPDATE", payloads.channel(channel), guild_id=channel.guild_id, intent=GUILDS
        )
        self.state.changed()

    def delete_channel(self, channel: Ref) -> None:
        """Delete a channel or thread: every later call naming it answers 10003."""
        gone = self.state.channels.pop(ref_id(channel))
        self.state.guild(gone.guild_id).channel_ids.remove(gone.id)
        event = "THREAD_DELETE" if gone.is_thread else "CHANNEL_DELETE"
        self.gateway.dispatch(
            event, payloads.channel(gone), guild_id=gone.guild_id, intent=GUILDS
        )
        self.state.changed()

    def create_role(
        self, guild_id: int, name: str, permissions: int = 0, *, mentionable: bool = False
    ) -> Role:
        guild = self.state.guild(guild_id)
        role = Role(
            self.state.ids.next(),
            guild_id,
            name,
            permissions,
            position=len(guild.roles),
            mentionable=mentionable,
        )
        guild.roles[role.id] = role
        self.gateway.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild_id), "role": payloads.role(role)},
            guild_id=guild_id,
            intent=GUILDS,
        )
        self.state.changed()
        return role

    def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> Role:
        role = self.state.guild(guild_id).roles[role_id]
        role.permissions = permissions
        self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild_id), "role": payloads.role(role)},
            guild_id=guild_id,
            intent=GUILDS,
        )
        self.state.changed()
        return role

    def create_member(
        self,
        guild_id: int,
        username: str | None = None,
        *,
        user: User | None = None,
        roles: list[int] | tuple[int, ...] = (),
        permissions: int | None = None,
    ) -> Member:
        """A guild member; ``permissions`` gives them a personal role with those bits."""
        guild = self.state.guild(guild_id)
        if user is None:
            user = self.create_user(username or f"user{len(self.state.users)}")
        role_ids = [int(r.id if isinstance(r, Role) else r) for r in roles]
        if permissions is not None:
            role_ids.append(self.create_role(guild_id, f"{user.username}-perms", permissions).id)
        member = self._join(guild, user, role_ids)
        self.gateway.dispatch(
            "GUILD_MEMBER_ADD",
            {**payloads.member(member), "guild_id": str(guild_id)},
            guild_id=guild_id,
            intent=GUILD_MEMBERS,
        )
        self.state.changed()
        return member

    def set_overwrite(
        self,
        channel_id: int,
        target_id: int,
        *,
        allow: int = 0,
        deny: int = 0,
        target_type: int | None = None,
    ) -> Overwrite:
        """Set a channel permission overwrite for a role (type 0) or member (type 1)."""
        channel = self.state.channel(channel_id)
        if target_type is None:
            target_type = 0 if target_id in self.state.guild(channel.guild_id).roles else 1
        overwrite = Overwrite(target_id, target_type, allow, deny)
        channel.overwrites[target_id] = overwrite
        self.gateway.dispatch(
            "CHANNEL_UPDATE", payloads.channel(channel), guild_id=channel.guild_id, intent=GUILDS
        )
        self.state.changed()
        return overwrite

    def remove_overwrite(self, channel_id: int, target_id: int) -> None:
        channel = self.state.channel(channel_id)
        channel.overwrites.pop(target_id, None)
        self.gateway.dispatch(
            "CHANNEL_UPDATE", payloads.channel(channel), guild_id=channel.guild_id, intent=GUILDS
        )
        self.state.changed()

    # -- content made by users -----------------------------------------------------------

    def add_attachment(
        self,
        filename: str,
        data: bytes | str | Path,
        *,
        content_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration_secs: float | None = None,
    ) -> Attachment:
        """A user's upload, downloadable from the CDN (``data`` may be bytes or a path)."""
        raw = data if isinstance(data, bytes) else Path(data).read_bytes()
        att = messages.store_file(
            self._emu,
            filename=filename,
            data=raw,
            content_type=content_type,
            scope="ephemeral-attachments",
            ephemeral=True,
        )
        if content_type:
            att.content_type = content_type
        att.width, att.height, att.duration_secs = width, height, duration_secs
        self.state.changed()
        return att

    def post_user_message(
        self,
        channel_id: int,
        user_id: int,
        content: str = "",
        *,
        attachments: list[Attachment] | tuple[Attachment, ...] = (),
    ) -> Message:
        """A message written by a (non-bot) member, announced with MESSAGE_CREATE."""
        channel = self.state.channel(channel_id)
        author = self.state.users[user_id]
        message = messages.create(
            self._emu,
            channel=channel,
            author=author,
            out=messages.Outgoing({"content": content}),
            flags=0,
            preset_attachments=list(attachments),
        )
        self.state.changed()
        return message
