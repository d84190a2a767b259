"""What /kling-admin takes and checks before any command runs: the channels a rule can name,
the moderator check's refusal, and members' display names for the usage chart."""

from __future__ import annotations

from collections.abc import Sequence

import discord
from discord import app_commands

from bot.i18n import N_, english
from cogs.render import plain_text


class _RuledChannel(app_commands.Transformer):
    """Where /edit can run: text and announcement channels, voice and stage text chats,
    forums (whose posts are threads) and single threads. A thread without a rule of its
    own follows its channel's.

    Spelled out because discord.py's `discord.ForumChannel` also offers media channels
    (type 16), which Discord's API description does not accept in `channel_types`.
    """

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        kinds = discord.ChannelType
        return [
            kinds.text, kinds.news, kinds.voice, kinds.stage_voice, kinds.forum,
            kinds.public_thread, kinds.private_thread, kinds.news_thread,
        ]

    async def transform(
        self, interaction: discord.Interaction, value: object
    ) -> app_commands.AppCommandChannel | app_commands.AppCommandThread:
        assert isinstance(value, app_commands.AppCommandChannel | app_commands.AppCommandThread)
        return value


RuledChannel = app_commands.Transform[
    app_commands.AppCommandChannel | app_commands.AppCommandThread, _RuledChannel
]

async def display_names(guild: discord.Guild | None, members: Sequence[int]) -> dict[int, str]:
    """The members' names as the server shows them: from the cache, else asked of Discord
    (at most the chart's few top members); one who left keeps their number."""
    names: dict[int, str] = {}
    if guild is None:
        return names
    for member_id in members:
        member = guild.get_member(member_id)
        if member is None:
            try:
                member = await guild.fetch_member(member_id)
            except discord.HTTPException:
                continue
        names[member_id] = plain_text(member.display_name)
    return names


class ModeratorOnly(app_commands.CheckFailure):
    """A member without Manage Server or the moderator role; told in their language."""

    text = N_(
        "Only moderators can use /kling-admin: you need Manage Server or the server's "
        "moderator role."
    )

    def __init__(self) -> None:
        super().__init__(english(self.text))
