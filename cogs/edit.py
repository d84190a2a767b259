"""/edit and the "Edit with Kling" message menu: parse, defer, hand to the engine."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.jobs.models import EditRequest, InputFile
from cogs.errors import Refused
from cogs.submit import parent_channel_id, permission_notes, requester, run_edit
from cogs.views import PromptModal

VIDEO_EXTENSIONS = (".mp4", ".mov")


def _attachment(attachment: discord.Attachment) -> InputFile:
    return InputFile(url=attachment.url, declared_size=attachment.size)


def _video_input(
    video: discord.Attachment | None, video_url: str | None
) -> tuple[InputFile, bool]:
    if (video is None) == (not video_url):
        raise Refused(
            "Give exactly one clip: attach it as `video`, or paste a link as `video_url` "
            "(for files too big to attach).",
        )
    if video is not None:
        return _attachment(video), False
    assert video_url is not None
    url = video_url.strip()
    if not url.lower().startswith("https://"):
        raise Refused("Links must start with https://.")
    return InputFile(url=url), True


class EditCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Edit with Kling", callback=self.edit_message)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="edit", description="Edit a 3–10 s video clip with Kling AI")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What should change in the clip (up to 5000 characters)",
        video="The clip: .mp4 or .mov, 3–10 s, up to 100 MB",
        video_url="Or an https link to the clip, for files too big to attach",
        image1="Optional reference image (JPEG, PNG or WebP, up to 10 MB)",
        image2="Optional second reference image",
        image3="Optional third reference image",
        image4="Optional fourth reference image",
        keep_audio="Keep the clip's original sound (default: yes)",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 5000],
        video: discord.Attachment | None = None,
        video_url: str | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        keep_audio: bool = True,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            notes = permission_notes(interaction)
            video_input, is_link = _video_input(video, video_url)
            if not prompt.strip():
                raise Refused("The prompt is empty: say what should change.")
        except Refused as refusal:
            await interaction.followup.send(f"❌ {refusal.text}", ephemeral=True)
            return
        images = [_attachment(a) for a in (image1, image2, image3, image4) if a is not None]
        member = requester(interaction)
        request = EditRequest(
            guild_id=interaction.guild_id or 0, channel_id=interaction.channel_id or 0,
            rules_channel_id=parent_channel_id(interaction),
            user_id=member.user_id, role_ids=member.role_ids, prompt=prompt,
            keep_audio=keep_audio, video=video_input, video_is_user_link=is_link, images=images,
        )
        await run_edit(interaction, request, notes)

    async def edit_message(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        clips = [
            a for a in message.attachments
            if (a.content_type or "").startswith("video/")
            or a.filename.lower().endswith(VIDEO_EXTENSIONS)
        ]
        if not clips:
            await interaction.response.send_message(
                "That message has no video attachment to edit.", ephemeral=True
            )
            return
        member = requester(interaction)
        request = EditRequest(
            guild_id=interaction.guild_id or 0, channel_id=interaction.channel_id or 0,
            rules_channel_id=parent_channel_id(interaction),
            user_id=member.user_id, role_ids=member.role_ids, prompt="(pending)",
            video=_attachment(clips[0]),
        )
        await interaction.response.send_modal(PromptModal("Edit with Kling", request))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(EditCog(bot))
