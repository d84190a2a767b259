"""Serialisation of the model into Discord's JSON shapes (what discord.py parses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import Channel, ChannelType, Guild, Member, Message, Overwrite, Role, User

if TYPE_CHECKING:
    from .state import EmulatorState


def user(u: User) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": None,
        "public_flags": 0,
    }
    if u.bot:
        payload["bot"] = True
    return payload


def role(r: Role) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "permissions": str(r.permissions),
        "position": r.position,
        "color": r.color,
        "hoist": r.hoist,
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        payload["tags"] = {"bot_id": str(r.bot_id)}
    return payload


def member(m: Member, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "roles": [str(r) for r in m.roles],
        "joined_at": m.joined_at,
        "nick": m.nick,
        "avatar": None,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        payload["user"] = user(m.user)
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def overwrite(o: Overwrite) -> dict[str, Any]:
    return {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}


def channel(c: Channel, *, permissions: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(c.id),
        "type": int(c.type),
        "guild_id": str(c.guild_id),
        "name": c.name,
        "parent_id": str(c.parent_id) if c.parent_id is not None else None,
        "last_message_id": str(c.last_message_id) if c.last_message_id else None,
        "rate_limit_per_user": c.rate_limit_per_user,
        "flags": 0,
    }
    if c.is_thread:
        payload.update(
            {
                "owner_id": str(c.owner_id),
                "message_count": c.message_count,
                "total_message_sent": c.message_count,
                "member_count": max(1, len(c.member_ids)),
                "thread_metadata": {
                    "archived": c.archived,
                    "auto_archive_duration": c.auto_archive_duration,
                    "archive_timestamp": c.archive_timestamp,
                    "locked": c.locked,
                    "create_timestamp": c.created_at,
                    "invitable": True,
                },
            }
        )
    else:
        payload.update(
            {
                "position": c.position,
                "topic": c.topic,
                "nsfw": c.nsfw,
                "permission_overwrites": [overwrite(o) for o in c.overwrites.values()],
                "default_auto_archive_duration": 1440,
            }
        )
    if c.type in (ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE):
        # discord.py reads these without a default (channel.py, VocalGuildChannel).
        payload.update({"bitrate": 64000, "user_limit": 0, "rtc_region": None})
    if c.type in (ChannelType.GUILD_FORUM, ChannelType.GUILD_MEDIA):
        payload.update({"available_tags": [], "default_reaction_emoji": None})
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def guild(g: Guild) -> dict[str, Any]:
    """The REST guild object (no channels or members)."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None if g.system_channel_id is None else str(g.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(g.premium_tier, 0),
        "preferred_locale": g.preferred_locale,
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def gateway_guild(
    state: EmulatorState, g: Guild, *, bot_user_id: int, all_members: bool, joined: bool = False
) -> dict[str, Any]:
    """GUILD_CREATE: the guild plus channels, threads and (visible) members.

    After READY, guilds come with ``unavailable: false``; a guild the bot just ``joined``
    has no ``unavailable`` key, which is how the client tells ``on_guild_join`` apart.
    """
    payload = guild(g)
    channels = [state.channels[c] for c in g.channel_ids if c in state.channels]
    members = [m for m in g.members.values() if all_members or m.user.id == bot_user_id]
    payload.update(
        {
            "unavailable": False,
            "large": False,
            "member_count": len(g.members),
            "joined_at": g.members[bot_user_id].joined_at if bot_user_id in g.members else None,
            "channels": [channel(c) for c in channels if not c.is_thread],
            "threads": [channel(c) for c in channels if c.is_thread and not c.archived],
            "members": [member(m) for m in members],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
    )
    if joined:
        del payload["unavailable"]
    return payload


def message(state: EmulatorState, m: Message, *, gateway: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "type": int(m.type),
        "content": m.content,
        "author": user(m.author),
        "attachments": [a.to_payload(state.cdn) for a in m.attachments],
        "embeds": m.embeds,
        "components": m.components,
        "mentions": [_mention(state, m, uid) for uid in m.mentions],
        "mention_roles": [str(r) for r in m.mention_roles],
        "mention_everyone": m.mention_everyone,
        "pinned": m.pinned,
        "tts": m.tts,
        "timestamp": m.timestamp,
        "edited_timestamp": m.edited_timestamp,
        "flags": m.flags,
    }
    if m.guild_id is not None:
        payload["guild_id"] = str(m.guild_id)
    if m.nonce is not None:
        payload["nonce"] = m.nonce
    if m.webhook_id is not None:
        payload["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        payload["application_id"] = str(m.application_id)
    if m.interaction_metadata is not None:
        payload["interaction_metadata"] = m.interaction_metadata
    if m.message_reference is not None:
        payload["message_reference"] = m.message_reference
    if m.thread_id is not None and m.thread_id in state.channels:
        payload["thread"] = channel(state.channels[m.thread_id])
    if gateway and m.guild_id is not None and m.webhook_id is None:
        g = state.guilds.get(m.guild_id)
        if g is not None and m.author.id in g.members:
            payload["member"] = member(g.members[m.author.id], with_user=False)
    return payload


def _mention(state: EmulatorState, m: Message, user_id: int) -> dict[str, Any]:
    u = state.users.get(user_id)
    payload: dict[str, Any] = (
        user(u) if u is not None else {"id": str(user_id), "username": "unknown"}
    )
    g = state.guilds.get(m.guild_id) if m.guild_id is not None else None
    if g is not None and user_id in g.members:
        payload["member"] = member(g.members[user_id], with_user=False)
    return payload
