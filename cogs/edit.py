"""/edit and the "Edit with Kling" message menu: parse, defer, hand to the engine."""

from __future__ import annotations

import copy
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.evolink.spec import MAX_PROMPT_CHARS, ModelSpec
from bot.i18n import N_, Text
from bot.jobs.models import EditRequest, InputFile
from bot.media.errors import MediaRejected
from bot.media.urlpolicy import require_https
from cogs.errors import Refused
from cogs.i18n import localized, speaker_for
from cogs.submit import (
    forms_of,
    parent_channel_id,
    permission_notes,
    prompt_of,
    requester,
    run_edit,
    settings_of,
)
from cogs.views import PromptModal

VIDEO_EXTENSIONS = (".mp4", ".mov")
MENU_NAME = N_("Edit with Kling")  # the message menu's name and its form's title


def edit_description(spec: ModelSpec) -> Text:
    return N_("Edit a {range} video clip with Kling AI", range=spec.duration_range_text)


def edit_option_descriptions(spec: ModelSpec) -> dict[str, Text]:
    return {
        "prompt": N_("What should change in the clip (up to {chars} characters)",
                     chars=spec.max_prompt_chars),
        "video": N_("The clip: .mp4 or .mov, {range}, up to {size}",
                    range=spec.duration_range_text, size=spec.max_clip_text),
        "video_url": N_("Or an https link to the clip, for files too big to attach"),
        "image1": N_("Optional reference image (JPEG, PNG or WebP, up to {size})",
                     size=spec.max_image_text),
        "image2": N_("Optional second reference image"),
        "image3": N_("Optional third reference image"),
        "image4": N_("Optional fourth reference image"),
        "keep_audio": N_("Keep the clip's original sound (default: yes)"),
    }


def _describe(command: app_commands.Command[Any, ..., Any], spec: ModelSpec) -> None:
    """Word /edit for the configured model. discord.py fixes descriptions when the class is
    defined and shares its parameter objects among cog instances, so each is copied first."""
    description = localized(edit_description(spec))
    command.description, command._locale_description = description.message, description
    for name, text in edit_option_descriptions(spec).items():
        parameter = copy.copy(command._params[name])
        parameter.description = localized(text)
        if name == "prompt":
            parameter.max_value = spec.max_prompt_chars  # a string option's max_length
        command._params[name] = parameter


def _attachment(attachment: discord.Attachment) -> InputFile:
    return InputFile(url=attachment.url, declared_size=attachment.size)


def _video_input(
    video: discord.Attachment | None, video_url: str | None
) -> tuple[InputFile, bool]:
    if (video is None) == (not video_url):
        raise Refused(N_(
            "Give exactly one clip: attach it as `video`, or paste a link as `video_url` "
            "(for files too big to attach)."
        ))
    if video is not None:
        return _attachment(video), False
    assert video_url is not None
    url = video_url.strip()
    try:
        require_https(url)
    except MediaRejected as refusal:
        raise Refused(refusal.text) from None
    return InputFile(url=url), True


class EditCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        _describe(self.edit, settings_of(bot).model_spec)
        self.menu = app_commands.ContextMenu(
            name=app_commands.locale_str(MENU_NAME.msgid), callback=self.edit_message
        )
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # Described for the configured model in __init__ (_describe).
    @app_commands.command(name="edit", description="Edit a video clip with Kling AI")
    @app_commands.guild_only()
    async def edit(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
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
            prompt = prompt_of(prompt)
        except Refused as refusal:
            await interaction.followup.send(
                f"❌ {speaker_for(interaction)(refusal.text)}", ephemeral=True
            )
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
                speaker_for(interaction)(N_("That message has no video attachment to edit.")),
                ephemeral=True,
            )
            return
        member = requester(interaction)
        request = EditRequest(
            guild_id=interaction.guild_id or 0, channel_id=interaction.channel_id or 0,
            rules_channel_id=parent_channel_id(interaction),
            user_id=member.user_id, role_ids=member.role_ids, prompt="(pending)",
            video=_attachment(clips[0]),
        )
        await interaction.response.send_modal(PromptModal(
            speaker_for(interaction), MENU_NAME, request, forms_of(interaction.client)
        ))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(EditCog(bot))
