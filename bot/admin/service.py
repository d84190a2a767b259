"""AdminService: one method per /kling-admin subcommand, Discord-free.

Methods take plain ids and ints plus the acting moderator's id, return pydantic
models, and raise AdminRefused (nothing written) for bad input. Every change is
written together with its audit row and then mirrored to the log channel, if any.
"""

from __future__ import annotations

from bot.admin.guild_admin import GuildAdmin
from bot.admin.job_admin import JobAdmin
from bot.admin.member_admin import MemberAdmin


class AdminService(GuildAdmin, MemberAdmin, JobAdmin):
    """Constructed as AdminService(db, actions, clock=..., mirror=...): job actions (re-post,
    fail) are the engine's, so a moderator's fix takes the same path as the bot's own work."""
