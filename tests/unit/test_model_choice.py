"""EVOLINK_MODELS: the /edit `model` option and the form's select exist only with a choice,
their labels come from ModelSpec within Discord's limits, and quotas count every model's
seconds by its price, exactly (integers from exact fractions, never float drift)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.client import KlingBot
from bot.evolink.spec import MODEL_SPECS, QUOTA_REFERENCE_MODEL, EditModel, ModelSpec
from bot.i18n import N_, Catalogs, english
from bot.jobs.messages import quota_rule
from bot.jobs.models import EditRequest, InputFile
from bot.settings import Settings
from cogs.forms import OpenForms
from cogs.views import PromptModal

STANDARD = MODEL_SPECS[EditModel.STANDARD]
FAST = MODEL_SPECS[EditModel.FAST]
BOTH = "kling-o1-video-edit,kling-o1-video-edit-fast"
# Discord: an option choice's name and a select option's label are 1–100 characters.
DISCORD_CHOICE_MAX = 100


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


async def edit_payload(env: dict[str, str]) -> dict[str, Any]:
    bot = KlingBot(settings(**env), sync_only=True)
    await bot.setup_hook()
    try:
        command = bot.tree.get_command("edit", type=discord.AppCommandType.chat_input)
        assert isinstance(command, app_commands.Command)
        payload: dict[str, Any] = command.to_dict(bot.tree)
        return payload
    finally:
        await bot.close()


async def test_one_model_means_no_model_option() -> None:
    payload = await edit_payload({})
    assert "model" not in {option["name"] for option in payload["options"]}


async def test_several_models_are_offered_default_first_with_their_range_and_price() -> None:
    payload = await edit_payload({"EVOLINK_MODEL": "kling-o1-video-edit-fast",
                                  "EVOLINK_MODELS": BOTH})
    options = {option["name"]: option for option in payload["options"]}
    choices = options["model"]["choices"]
    assert [choice["value"] for choice in choices] == [FAST.name, STANDARD.name]
    assert choices[0]["name"] == "kling-o1-video-edit-fast · 6–20 s · 6.8 credits/s"
    assert choices[1]["name"] == "kling-o1-video-edit · 3–10 s · 12 credits/s"
    assert not options["model"].get("required", False)
    assert "default: kling-o1-video-edit-fast" in options["model"]["description"]
    # The command and the clip speak of every length some model edits.
    assert payload["description"] == "Edit a 3–20 s video clip with Kling AI"
    assert "3–20 s" in options["video"]["description"]


@pytest.mark.parametrize("spec", list(MODEL_SPECS.values()))
def test_every_label_fits_discords_choice_limit(spec: ModelSpec) -> None:
    assert 1 <= len(english(spec.choice_label)) <= DISCORD_CHOICE_MAX


ENGLISH = Catalogs().speaker("en-US")
AGAIN = N_("Edit #{job} again", job=1)


def request(model: EditModel | None = None) -> EditRequest:
    return EditRequest(guild_id=1, channel_id=2, user_id=3, prompt="(pending)",
                       video=InputFile(url="u"), model=model)


def test_the_form_offers_a_select_only_with_a_choice_starting_at_the_jobs_model() -> None:
    alone = PromptModal(ENGLISH, AGAIN, request(), OpenForms(), [STANDARD])
    assert alone.model is None
    assert all(item.type is not discord.ComponentType.label for item in alone.children)

    both = PromptModal(ENGLISH, AGAIN, request(EditModel.FAST), OpenForms(),
                       [STANDARD, FAST])
    assert both.model is not None
    defaults = [option.value for option in both.model.options if option.default]
    assert defaults == [FAST.name]
    assert all(len(option.label) <= DISCORD_CHOICE_MAX for option in both.model.options)


@pytest.mark.parametrize("spec", list(MODEL_SPECS.values()))
def test_quota_seconds_are_the_price_weighted_seconds_rounded_up(spec: ModelSpec) -> None:
    reference = MODEL_SPECS[QUOTA_REFERENCE_MODEL]
    for billed in range(0, 10_001):
        exact = billed * Fraction(str(spec.credits_per_second)) / Fraction(
            str(reference.credits_per_second)
        )
        counted = spec.quota_seconds(billed)
        assert isinstance(counted, int) and counted - 1 < exact <= counted


def test_the_reference_models_seconds_count_as_they_are_billed_and_fast_ones_by_price() -> None:
    assert [STANDARD.quota_seconds(s) for s in (3, 10)] == [3, 10]
    # 6.8/12 = 17/30 of a standard second: 30 fast seconds weigh exactly 17.
    assert [FAST.quota_seconds(s) for s in (6, 20, 30)] == [4, 12, 17]


def test_quota_rule_states_the_weighting_only_when_a_weighted_model_is_offered() -> None:
    assert english(quota_rule((STANDARD,))) == (
        "A clip is billed by its length, rounded up: 3–10 s per edit."
    )
    both = english(quota_rule((STANDARD, FAST)))
    assert "kling-o1-video-edit 3–10 s, kling-o1-video-edit-fast 6–20 s per edit" in both
    assert "a kling-o1-video-edit-fast second counts 6.8/12 of one" in both
