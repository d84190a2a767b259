"""/kling-admin: moderation and quota administration."""

from __future__ import annotations

from discord.ext import commands

from cogs.admin.commands import AdminCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))
