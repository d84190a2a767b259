"""Which users, roles and @everyone a message mentions, and who would actually be pinged.

Follows Discord's rules: without ``allowed_mentions`` everything in the content is parsed;
with it, only the ``parse`` types and the listed ``users``/``roles`` ids are honoured.
Role pings need a mentionable role (or MENTION_EVERYONE), @everyone/@here need
MENTION_EVERYONE. Replies ping the replied-to author when ``replied_user`` allows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .models import Guild, Message, MessageFlags
from .permissions import Permissions

USER_MENTION = re.compile(r"<@!?(\d{15,21})>")
ROLE_MENTION = re.compile(r"<@&(\d{15,21})>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)")


@dataclass
class MentionResult:
    users: list[int] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)
    everyone: bool = False
    pinged: list[int] = field(default_factory=list)


def resolve(
    *,
    content: str,
    allowed: dict[str, Any] | None,
    guild: Guild | None,
    author_id: int,
    author_permissions: int,
    known_users: set[int],
    replied_user_id: int | None = None,
) -> MentionResult:
    parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
    allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
    allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
    result = MentionResult()

    for raw in dict.fromkeys(USER_MENTION.findall(content)):
        uid = int(raw)
        if uid in known_users and ("users" in parse or uid in allowed_users):
            result.users.append(uid)

    can_mention_everyone = bool(author_permissions & Permissions.MENTION_EVERYONE)
    if guild is not None:
        for raw in dict.fromkeys(ROLE_MENTION.findall(content)):
            role = guild.roles.get(int(raw))
            if role is None or not ("roles" in parse or role.id in allowed_roles):
                continue
            if role.mentionable or can_mention_everyone:
                result.roles.append(role.id)
        if EVERYONE_MENTION.search(content) and "everyone" in parse and can_mention_everyone:
            result.everyone = True

    replied_allowed = allowed is None or bool(allowed.get("replied_user", False))
    if replied_user_id is not None and replied_allowed and replied_user_id not in result.users:
        result.users.append(replied_user_id)

    pinged: dict[int, None] = dict.fromkeys(result.users)
    if guild is not None:
        for member in guild.members.values():
            if result.everyone or any(r in member.roles for r in result.roles):
                pinged[member.user.id] = None
    pinged.pop(author_id, None)
    result.pinged = list(pinged)
    return result


def apply(message: Message, result: MentionResult, *, notify: bool) -> None:
    """Store a :class:`MentionResult` on a message; ``notify`` also records the pings."""
    message.mentions = result.users
    message.mention_roles = result.roles
    message.mention_everyone = result.everyone
    if notify:
        silent = message.ephemeral or message.flags & MessageFlags.SUPPRESS_NOTIFICATIONS
        message.pinged_user_ids = [] if silent else result.pinged
