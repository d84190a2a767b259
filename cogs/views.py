"""Persistent buttons on delivered results and the prompt modal they open.

Buttons are DynamicItems: their job id lives in the custom_id, so they keep working after a
restart without any state in memory.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import discord

from bot.evolink.spec import MAX_PROMPT_CHARS, EditModel, ModelSpec
from bot.jobs.errors import EditRefused
from bot.jobs.models import EditRequest
from cogs.errors import Refused, answer_privately, apologise
from cogs.forms import OpenForms
from cogs.render import refusal_text
from cogs.submit import (
    accepted_text,
    forms_of,
    permission_notes,
    prompt_of,
    requester,
    run_edit,
    services_of,
)

# Discord refuses a form whose text input allows more than this (400), whatever the model takes.
DISCORD_TEXT_INPUT_MAX = 4000
PROMPT_FORM_PREFIX = "kling:prompt:"
async def answer_stale_form(interaction: discord.Interaction, forms: OpenForms) -> None:
    """Answer a prompt form this process did not open: say what to do."""
    if interaction.type is not discord.InteractionType.modal_submit or interaction.data is None:
        return
    custom_id = str(interaction.data.get("custom_id", ""))
    if not custom_id.startswith(PROMPT_FORM_PREFIX) or custom_id in forms:
        return
    await answer_privately(
        interaction,
        "This form was opened before the bot restarted, so it was lost and nothing was "
        "started. Press the button (or use the menu) again.",
    )


class PromptModal(discord.ui.Modal):
    """Asks for a prompt (and, when the bot offers several, a model), then runs the request
    with them as a new edit. The select starts at the request's model if it is offered;
    with one model offered, that one runs (Edit again of an edit whose model was dropped)."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        max_length=min(MAX_PROMPT_CHARS, DISCORD_TEXT_INPUT_MAX),
        min_length=1,
        placeholder="e.g. make it look like a snowy winter evening",
    )

    def __init__(
        self, title: str, request: EditRequest, forms: OpenForms, models: Sequence[ModelSpec]
    ) -> None:
        super().__init__(
            title=title, timeout=600, custom_id=f"{PROMPT_FORM_PREFIX}{secrets.token_hex(8)}"
        )
        self.request = request
        self.forms = forms
        self.default_model = EditModel(models[0].name)
        self.model: discord.ui.Select[PromptModal] | None = None
        if len(models) > 1:
            offered = [spec.name for spec in models]
            chosen = request.model if request.model in offered else self.default_model
            self.model = discord.ui.Select(
                custom_id="model", required=True, min_values=1, max_values=1,
                options=[discord.SelectOption(label=spec.choice_label, value=spec.name,
                                              default=spec.name == chosen) for spec in models],
            )
            self.add_item(discord.ui.Label(text="Model", component=self.model))
        forms.opened(self.custom_id)

    async def on_timeout(self) -> None:
        self.forms.closed(self.custom_id)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            notes = permission_notes(interaction)
            prompt = prompt_of(self.prompt.value)
        except Refused as refusal:
            await interaction.followup.send(f"❌ {refusal.text}", ephemeral=True)
            return
        model = EditModel(self.model.values[0]) if self.model else self.default_model
        request = self.request.model_copy(update={"prompt": prompt, "model": model})
        await run_edit(interaction, request, notes)

    async def on_error(  # type: ignore[override]  # discord.py: Modal narrows BaseView
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        await apologise(interaction, error, f"modal {self.title}")


class _JobButton:
    """What both result buttons share: the job id in the custom_id, errors answered.

    A mixin rather than a base DynamicItem because DynamicItem wants each subclass to
    bring its own custom_id template.
    """

    prefix: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle]
    item: discord.ui.Button[Any]

    def __init__(self, job_id: int) -> None:
        super().__init__(  # type: ignore[call-arg]
            discord.ui.Button(
                label=self.label,
                emoji=self.emoji,
                style=self.style,
                custom_id=f"{self.prefix}:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        # Errors of dynamic items only reach a throwaway view's on_error: answer them here.
        try:
            await self.act(interaction)
        except EditRefused as refusal:  # nothing started: say why, before or after deferring
            await answer_privately(interaction, refusal_text(refusal))
        except Exception as error:
            await apologise(interaction, error, f"button {self.item.custom_id}")

    async def act(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class EditAgainButton(
    _JobButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"kling:again:(?P<job_id>[0-9]+)",
):
    prefix, label, emoji, style = "kling:again", "Edit again", "✏️", discord.ButtonStyle.primary

    async def act(self, interaction: discord.Interaction) -> None:
        request = await services_of(interaction.client).actions.edit_again(
            self.job_id, interaction.guild_id or 0, requester(interaction)
        )
        await interaction.response.send_modal(PromptModal(
            f"Edit #{self.job_id} again", request, forms_of(interaction.client),
            services_of(interaction.client).config.models,
        ))


class RerunButton(
    _JobButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"kling:rerun:(?P<job_id>[0-9]+)",
):
    prefix, label, emoji, style = "kling:rerun", "Re-run", "🔁", discord.ButtonStyle.secondary

    async def act(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await services_of(interaction.client).actions.rerun(
            self.job_id, interaction.guild_id or 0, requester(interaction)
        )
        await interaction.followup.send(accepted_text(job, []), ephemeral=True)


def result_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(EditAgainButton(job_id))
    view.add_item(RerunButton(job_id))
    return view
