"""Moderation for /kling-admin, free of Discord: the cog parses, calls, renders."""

from bot.admin.base import AuditMirror
from bot.admin.errors import AdminRefused
from bot.admin.service import AdminService

__all__ = ["AdminRefused", "AdminService", "AuditMirror"]
