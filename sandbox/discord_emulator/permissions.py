"""Permission bits and Discord's permission resolution (base role permissions + overwrites)."""

from __future__ import annotations

from enum import IntFlag
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Channel, Guild


class Permissions(IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


ALL_PERMISSIONS = 0
for _flag in Permissions:
    ALL_PERMISSIONS |= int(_flag)

#: What @everyone gets in a new guild (the subset of Discord's default that matters here).
DEFAULT_EVERYONE = int(
    Permissions.CREATE_INSTANT_INVITE
    | Permissions.ADD_REACTIONS
    | Permissions.VIEW_CHANNEL
    | Permissions.SEND_MESSAGES
    | Permissions.EMBED_LINKS
    | Permissions.ATTACH_FILES
    | Permissions.READ_MESSAGE_HISTORY
    | Permissions.MENTION_EVERYONE
    | Permissions.USE_EXTERNAL_EMOJIS
    | Permissions.CHANGE_NICKNAME
    | Permissions.USE_APPLICATION_COMMANDS
    | Permissions.CREATE_PUBLIC_THREADS
    | Permissions.CREATE_PRIVATE_THREADS
    | Permissions.SEND_MESSAGES_IN_THREADS
)

#: What the bot's managed role grants by default (what a typical invite link asks for).
DEFAULT_BOT = int(
    Permissions.VIEW_CHANNEL
    | Permissions.SEND_MESSAGES
    | Permissions.SEND_MESSAGES_IN_THREADS
    | Permissions.CREATE_PUBLIC_THREADS
    | Permissions.EMBED_LINKS
    | Permissions.ATTACH_FILES
    | Permissions.READ_MESSAGE_HISTORY
    | Permissions.USE_APPLICATION_COMMANDS
)


def base_permissions(guild: Guild, user_id: int) -> int:
    """Guild-level permissions of a member: @everyone plus every role, owner/admin = all."""
    if user_id == guild.owner_id:
        return ALL_PERMISSIONS
    member = guild.members.get(user_id)
    everyone = guild.roles.get(guild.id)
    perms = everyone.permissions if everyone else 0
    if member is not None:
        for role_id in member.roles:
            role = guild.roles.get(role_id)
            if role is not None:
                perms |= role.permissions
    if perms & Permissions.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return perms


def channel_permissions(
    guild: Guild,
    channel: Channel,
    user_id: int,
    parent: Channel | None = None,
    *,
    implicit_denial: bool = True,
) -> int:
    """Permissions in a channel: base, then @everyone, role and member overwrites.

    Threads have no overwrites of their own; pass the parent channel as ``parent``.
    Without View Channel a member can do nothing there ("implicit permissions",
    https://discord.com/developers/docs/topics/permissions#implicit-permissions), which is
    how Discord decides what a request may do. An interaction's ``app_permissions`` is the
    raw bit set instead (``implicit_denial=False``): it can show Send Messages in a
    channel the app cannot see.
    """
    perms = base_permissions(guild, user_id)
    if perms & Permissions.ADMINISTRATOR or user_id == guild.owner_id:
        return ALL_PERMISSIONS
    source = parent if channel.is_thread and parent is not None else channel
    overwrites = source.overwrites
    everyone = overwrites.get(guild.id)
    if everyone is not None:
        perms = (perms & ~everyone.deny) | everyone.allow
    member = guild.members.get(user_id)
    role_ids = member.roles if member else []
    allow = deny = 0
    for role_id in role_ids:
        overwrite = overwrites.get(role_id)
        if overwrite is not None and overwrite.type == 0:
            allow |= overwrite.allow
            deny |= overwrite.deny
    perms = (perms & ~deny) | allow
    own = overwrites.get(user_id)
    if own is not None and own.type == 1:
        perms = (perms & ~own.deny) | own.allow
    if implicit_denial and not perms & Permissions.VIEW_CHANNEL:
        return 0
    return perms


def has(perms: int, needed: int) -> bool:
    return perms & needed == needed
