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
from bot.i18n import N_, Speaker, Text
from bot.jobs.errors import EditRefused
from bot.jobs.models import EditRequest
from cogs.errors import Refused, answer_privately, apologise
from cogs.forms import OpenForms
from cogs.i18n import speaker_for
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
PROMPT_LABEL = N_("What should change?")
PROMPT_PLACEHOLDER = N_("e.g. make it look like a snowy winter evening")
MODEL_LABEL = N_("Model")
async def answer_stale_form(interaction: discord.Interaction, forms: OpenForms) -> None:
    """Answer a prompt form this process did not open: say what to do."""
    if interaction.type is not discord.InteractionType.modal_submit or interaction.data is None:
        return
    custom_id = str(interaction.data.get("custom_id", ""))
    if not custom_id.startswith(PROMPT_FORM_PREFIX) or custom_id in forms:
        return
    await answer_privately(interaction, speaker_for(interaction)(N_(
        "This form was opened before the bot restarted, so it was lost and nothing was "
        "started. Press the button (or use the menu) again."
    )))


class PromptModal(discord.ui.Modal):
    """Asks for a prompt (and, when the bot offers several, a model), then runs the request
    with them as a new edit. The select starts at the request's model if it is offered;
    with one model offered, that one runs (Edit again of an edit whose model was dropped)."""

    def __init__(
        self, say: Speaker, title: Text, request: EditRequest, forms: OpenForms,
        models: Sequence[ModelSpec],
    ) -> None:
        """`say` speaks the language of the member who opens the form."""
        super().__init__(
            title=say(title), timeout=600,
            custom_id=f"{PROMPT_FORM_PREFIX}{secrets.token_hex(8)}",
        )
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=say(PROMPT_LABEL),
            style=discord.TextStyle.paragraph,
            max_length=min(MAX_PROMPT_CHARS, DISCORD_TEXT_INPUT_MAX),
            min_length=1,
            placeholder=say(PROMPT_PLACEHOLDER),
        )
        self.add_item(self.prompt)
        self.request = request
        self.forms = forms
        self.default_model = EditModel(models[0].name)
        self.model: discord.ui.Select[PromptModal] | None = None
        if len(models) > 1:
            offered = [spec.name for spec in models]
            chosen = request.model if request.model in offered else self.default_model
            self.model = discord.ui.Select(
                custom_id="model", required=True, min_values=1, max_values=1,
                options=[discord.SelectOption(label=say(spec.choice_label), value=spec.name,
                                              default=spec.name == chosen) for spec in models],
            )
            self.add_item(discord.ui.Label(text=say(MODEL_LABEL), component=self.model))
        forms.opened(self.custom_id)

    async def on_timeout(self) -> None:
        self.forms.closed(self.custom_id)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            notes = permission_notes(interaction)
            prompt = prompt_of(self.prompt.value)
        except Refused as refusal:
            await interaction.followup.send(
                f"❌ {speaker_for(interaction)(refusal.text)}", ephemeral=True
            )
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
    label: ClassVar[Text]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle]
    item: discord.ui.Button[Any]

    def __init__(self, job_id: int, label: str | None = None) -> None:
        super().__init__(  # type: ignore[call-arg]
            discord.ui.Button(
                label=label or self.label.msgid,
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
            await answer_privately(interaction, refusal_text(refusal, speaker_for(interaction)))
        except Exception as error:
            await apologise(interaction, error, f"button {self.item.custom_id}")

    async def act(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class EditAgainButton(
    _JobButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"kling:again:(?P<job_id>[0-9]+)",
):
    prefix, emoji, style = "kling:again", "✏️", discord.ButtonStyle.primary
    label = N_("Edit again")

    async def act(self, interaction: discord.Interaction) -> None:
        request = await services_of(interaction.client).actions.edit_again(
            self.job_id, interaction.guild_id or 0, requester(interaction)
        )
        await interaction.response.send_modal(PromptModal(
            speaker_for(interaction), N_("Edit #{job} again", job=self.job_id), request,
            forms_of(interaction.client), services_of(interaction.client).config.models,
        ))


class RerunButton(
    _JobButton,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"kling:rerun:(?P<job_id>[0-9]+)",
):
    prefix, emoji, style = "kling:rerun", "🔁", discord.ButtonStyle.secondary
    label = N_("Re-run")

    async def act(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await services_of(interaction.client).actions.rerun(
            self.job_id, interaction.guild_id or 0, requester(interaction)
        )
        await interaction.followup.send(
            accepted_text(job, [], speaker_for(interaction)), ephemeral=True
        )


def result_view(job_id: int, say: Speaker) -> discord.ui.View:
    """The buttons under a result, labelled in the language of its post (`say`)."""
    view = discord.ui.View(timeout=None)
    for button in (EditAgainButton, RerunButton):
        view.add_item(button(job_id, say(button.label)))
    return view
