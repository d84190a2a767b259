"""/kling-admin: moderation and quota administration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.admin.commands import AdminCog

if TYPE_CHECKING:
    from bot.client import KlingBot


async def setup(bot: KlingBot) -> None:
    await bot.add_cog(AdminCog(bot))
