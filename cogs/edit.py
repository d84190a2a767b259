"""/edit and the "Edit with Kling" message menu: parse, defer, hand to the engine."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.evolink.spec import MAX_PROMPT_CHARS, EditModel, ModelSpec, seconds_range_of
from bot.i18n import N_, Speaker, Text
from bot.jobs.intake import rules_for
from bot.jobs.messages import model_not_offered
from bot.jobs.models import EditRequest, InputFile
from bot.media.errors import MediaRejected
from bot.media.urlpolicy import require_https
from bot.media.validation import MAX_SOURCE_SECONDS, check_start
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


def edit_description(specs: Sequence[ModelSpec]) -> Text:
    return N_("Edit a {range} video clip with Kling AI", range=seconds_range_of(specs))


def edit_option_descriptions(specs: Sequence[ModelSpec]) -> dict[str, Text]:
    spec = specs[0]
    start = (
        N_("Second where the edit begins (default 0); a longer clip is cut to {seconds} s "
           "from there", seconds=spec.max_seconds) if len(specs) == 1 else
        N_("Second where the edit begins (default 0); a longer clip is cut to the model's "
           "maximum from there")
    )
    return {
        "prompt": N_("What should change in the clip (up to {chars} characters)",
                     chars=spec.max_prompt_chars),
        "video": N_("The clip: .mp4 or .mov up to {size}; {range} is edited, a longer clip is "
                    "cut", size=spec.max_clip_text, range=seconds_range_of(specs)),
        "video_url": N_("Or an https link to the clip, for files too big to attach"),
        "image1": N_("Optional reference image (JPEG, PNG or WebP, up to {size})",
                     size=spec.max_image_text),
        "image2": N_("Optional second reference image"),
        "image3": N_("Optional third reference image"),
        "image4": N_("Optional fourth reference image"),
        "keep_audio": N_("Keep the clip's original sound (default: yes)"),
        "model": N_("Which model edits the clip (default: {model})", model=spec.name),
        "start": start,
    }


def _describe(command: app_commands.Command[Any, ..., Any], specs: Sequence[ModelSpec]) -> None:
    """Word /edit for the enabled models (the default first); the `model` option exists only
    when there is a choice. discord.py fixes descriptions when the class is defined and
    shares its parameter objects among cog instances, so each is copied first."""
    description = localized(edit_description(specs))
    command.description, command._locale_description = description.message, description
    for name, text in edit_option_descriptions(specs).items():
        if name == "model" and len(specs) == 1:
            del command._params[name]  # the callback's default (None: the default model)
            continue
        parameter = copy.copy(command._params[name])
        parameter.description = localized(text)
        if name == "prompt":
            parameter.max_value = specs[0].max_prompt_chars  # a string option's max_length
        if name == "model":
            parameter.choices = [
                app_commands.Choice(name=localized(spec.choice_label), value=spec.name)
                for spec in specs
            ]
        command._params[name] = parameter


def _model_choice(interaction: discord.Interaction, model: str | None) -> EditModel | None:
    """The model the member picked. Read from the interaction too: with one model the option
    is not declared, but a schema synced before EVOLINK_MODELS changed may still send it,
    and a pick must be honoured or refused (the engine refuses what is not offered), never
    silently replaced by the default."""
    picked = model or getattr(interaction.namespace, "model", None)
    if picked is None:
        return None
    try:
        return EditModel(picked)
    except ValueError:
        raise Refused(model_not_offered(str(picked))) from None


def edit_options_help(specs: Sequence[ModelSpec], say: Speaker) -> str:
    """The /edit options in one list, worded as the command describes them: added to any
    refusal of how the command was filled in."""
    described = {name: say(text) for name, text in edit_option_descriptions(specs).items()}
    lines = [
        say(N_("**/edit options**")),
        say(N_("- `prompt` (required): {description}", description=described["prompt"])),
        say(N_("- `video` or `video_url` (exactly one): {description}; or an https link",
               description=described["video"])),
        f"- `start`: {described['start']}",
        f"- `image1`…`image4`: {described['image1']}",
        f"- `keep_audio`: {described['keep_audio']}",
    ]
    if len(specs) > 1:
        lines.append(f"- `model`: {described['model']}")
    return "\n".join(lines)


def _attachment(attachment: discord.Attachment) -> InputFile:
    return InputFile(url=attachment.url, declared_size=attachment.size)


def _video_input(
    video: discord.Attachment | None, video_url: str | None
) -> tuple[InputFile, bool]:
    if video is None and not video_url:
        raise Refused(N_(
            "Give exactly one clip: attach it as `video`, or paste a link as `video_url` "
            "(for files too big to attach); none was given."
        ))
    if video is not None and video_url:
        raise Refused(N_(
            "Give exactly one clip: attach it as `video` or paste a link as `video_url`, "
            "not both."
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


def _check_start(start: float, spec: ModelSpec) -> None:
    """The engine checks `start` too (every entry point); here the refusal comes with the
    options it belongs to."""
    try:
        check_start(start, rules_for(spec).clip)
    except MediaRejected as refusal:
        raise Refused(refusal.text) from None


class EditCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        _describe(self.edit, settings_of(bot).model_specs)
        self.menu = app_commands.ContextMenu(
            name=app_commands.locale_str(MENU_NAME.msgid), callback=self.edit_message
        )
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # Described for the enabled models in __init__ (_describe).
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
        model: str | None = None,
        start: app_commands.Range[float, 0.0, float(MAX_SOURCE_SECONDS)] = 0.0,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        specs, say = settings_of(self.bot).model_specs, speaker_for(interaction)
        try:
            notes = permission_notes(interaction)
        except Refused as refusal:
            await interaction.followup.send(f"❌ {say(refusal.text)}", ephemeral=True)
            return
        try:
            video_input, is_link = _video_input(video, video_url)
            prompt = prompt_of(prompt)
            chosen = _model_choice(interaction, model)
            _check_start(start, specs[0])
        except Refused as refusal:
            text = f"❌ {say(refusal.text)}\n{edit_options_help(specs, say)}"
            await interaction.followup.send(text, ephemeral=True)
            return
        images = [_attachment(a) for a in (image1, image2, image3, image4) if a is not None]
        member = requester(interaction)
        request = EditRequest(
            guild_id=interaction.guild_id or 0, channel_id=interaction.channel_id or 0,
            rules_channel_id=parent_channel_id(interaction),
            user_id=member.user_id, role_ids=member.role_ids, prompt=prompt,
            keep_audio=keep_audio, video=video_input, video_is_user_link=is_link, images=images,
            model=chosen,
            start_s=start,
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
            speaker_for(interaction), MENU_NAME, request, forms_of(interaction.client),
            settings_of(interaction.client).model_specs,
        ))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(EditCog(bot))
