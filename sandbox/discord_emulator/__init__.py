"""A loopback Discord for tests, demos and benchmarks: REST, gateway, CDN and control API.

See ``README.md`` in this directory for the API and the facts it is built on.
"""

from __future__ import annotations

from .commands import CommandError
from .emulator import DiscordEmulator
from .errors import DiscordError
from .interactions import AckAttempt, InteractionRecord
from .models import (
    PREMIUM_UPLOAD_LIMITS,
    Application,
    Attachment,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageFlags,
    Overwrite,
    RestCall,
    Role,
    User,
)
from .permissions import DEFAULT_BOT, DEFAULT_EVERYONE, Permissions
from .ratelimit import DEFAULT_RULES, RateLimitHit, RateLimitRule

__all__ = [
    "DEFAULT_BOT",
    "DEFAULT_EVERYONE",
    "DEFAULT_RULES",
    "PREMIUM_UPLOAD_LIMITS",
    "AckAttempt",
    "Application",
    "Attachment",
    "Channel",
    "ChannelType",
    "CommandError",
    "DiscordEmulator",
    "DiscordError",
    "Guild",
    "InteractionRecord",
    "Member",
    "Message",
    "MessageFlags",
    "Overwrite",
    "Permissions",
    "RateLimitHit",
    "RateLimitRule",
    "RestCall",
    "Role",
    "User",
]
