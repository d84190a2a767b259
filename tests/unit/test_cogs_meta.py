"""Walks every extension the bot loads (python-discord's tests/bot/exts/test_cogs.py, ours).

No Discord connection: the bot is built with `sync_only=True`, so setup_hook loads the
extensions and stops before opening any service.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.client import EXTENSIONS, KlingBot
from bot.i18n import Catalogs
from bot.settings import Settings
from cogs.views import EditAgainButton, RerunButton, result_view

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = "…"  # what discord.py uses when a command or option has no description
# A row of the README's "## Commands" table: | `/edit` | … |, | `Edit with Kling` | … |
COMMAND_ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`\s*\|", re.MULTILINE)


async def started(**env: str) -> AsyncIterator[KlingBot]:
    kling = KlingBot(Settings(_env_file=None, **env), sync_only=True)  # type: ignore[arg-type]
    await kling.setup_hook()
    try:
        yield kling
    finally:
        await kling.close()


@pytest.fixture
async def bot() -> AsyncIterator[KlingBot]:
    async for kling in started():
        yield kling


# One model: /edit has no `model` option; several: it has one, with a choice per model.
@pytest.fixture(params=[{}, {"EVOLINK_MODELS": "kling-o1-video-edit,kling-o1-video-edit-fast"}],
                ids=["one model", "two models"])
async def any_bot(request: pytest.FixtureRequest) -> AsyncIterator[KlingBot]:
    async for kling in started(**request.param):
        yield kling


def readme_commands() -> list[str]:
    """The first cell of each row of the README's "## Commands" table."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Commands\n(?P<body>.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, 'README.md has no "## Commands" section'
    return COMMAND_ROW.findall(match["body"])


def walk(
    tree: app_commands.CommandTree[discord.Client],
) -> Iterator[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    for command in tree.get_commands(type=discord.AppCommandType.chat_input):
        assert isinstance(command, app_commands.Command | app_commands.Group)
        yield command
        if isinstance(command, app_commands.Group):
            yield from command.walk_commands()


async def test_every_extension_loads(bot: KlingBot) -> None:
    assert EXTENSIONS, "the bot loads no extensions"
    assert set(bot.extensions) == set(EXTENSIONS)
    assert bot.cogs, "the extensions added no cog"


async def test_every_command_subcommand_and_option_has_a_description(bot: KlingBot) -> None:
    missing = []
    for command in walk(bot.tree):
        if command.description.strip() in ("", PLACEHOLDER):
            missing.append(f"/{command.qualified_name}")
        if isinstance(command, app_commands.Command):
            missing += [
                f"/{command.qualified_name} {parameter.name}"
                for parameter in command.parameters
                if parameter.description.strip() in ("", PLACEHOLDER)
            ]
    assert not missing, f"no description: {missing}"


async def test_the_commands_are_exactly_the_ones_the_readme_documents(bot: KlingBot) -> None:
    documented = readme_commands()
    documented_slash = {name[1:].split()[0] for name in documented if name.startswith("/")}
    documented_menus = {name for name in documented if not name.startswith("/")}
    slash = {c.name for c in bot.tree.get_commands(type=discord.AppCommandType.chat_input)}
    menus = {c.name for c in bot.tree.get_commands(type=discord.AppCommandType.message)}
    assert slash == documented_slash
    assert menus == documented_menus
    assert "Edit with Kling" in menus
    assert len(documented) == len(set(documented)), "a command is documented twice"


async def test_edit_with_kling_is_a_server_only_message_menu(bot: KlingBot) -> None:
    menu = bot.tree.get_command("Edit with Kling", type=discord.AppCommandType.message)
    assert isinstance(menu, app_commands.ContextMenu) and menu.guild_only


def test_result_buttons_route_to_their_persistent_handlers_after_a_restart() -> None:
    """A restarted bot knows nothing of old views: each button's custom_id must match the
    template of a DynamicItem the bot registers, and carry the job id."""
    buttons = [
        child.item for child in result_view(4242, Catalogs().speaker("en-US")).children
        if isinstance(child, discord.ui.DynamicItem) and isinstance(child.item, discord.ui.Button)
    ]
    labels = {button.label: button.custom_id or "" for button in buttons}
    assert set(labels) == {"Edit again", "Re-run"}
    for label, item in (("Edit again", EditAgainButton), ("Re-run", RerunButton)):
        match = item.__discord_ui_compiled_template__.fullmatch(labels[label])
        assert match is not None and match["job_id"] == "4242"
        assert len(labels[label]) <= 100  # Discord's custom_id limit


# --- the command fields in every language (Discord's rules, application-commands docs) -----
# "Localization": keys are locales; localized names and descriptions follow the same
# constraints as the field (names: the naming regex, lowercase for chat-input commands and
# options; descriptions and choice names: 1-100 characters; context-menu names 1-32).
CHAT_INPUT_NAME = re.compile(r"^[-_'\w]{1,32}$")
DISCORD_LOCALES = {locale.value for locale in discord.Locale}
TRANSLATED = {"de", "es-ES", "es-419", "fr", "ja", "pt-BR"}


def localizations(payload: dict[str, Any], path: str) -> Iterator[tuple[str, str, str, str]]:
    """(where, field, locale, text) for every localized field of a command payload."""
    for field in ("name_localizations", "description_localizations"):
        for locale, text in (payload.get(field) or {}).items():
            yield path, field, locale, text
    for option in payload.get("options") or []:
        yield from localizations(option, f"{path} {option['name']}")
    for choice in payload.get("choices") or []:
        for locale, text in (choice.get("name_localizations") or {}).items():
            yield f"{path} choice {choice['name']}", "choice_name", locale, text


async def translated_payloads(bot: KlingBot) -> list[dict[str, Any]]:
    translator = bot.tree.translator
    assert translator is not None, "setup_hook sets the command translator"
    return [
        await command.get_translated_payload(bot.tree, translator)
        for command in bot.tree.get_commands()
    ]


async def test_every_translated_command_field_keeps_discords_limits(any_bot: KlingBot) -> None:
    broken = []
    for payload in await translated_payloads(any_bot):
        chat_input = payload.get("type", 1) == 1
        for where, field, locale, text in localizations(payload, payload["name"]):
            fits = (
                bool(CHAT_INPUT_NAME.match(text)) and text == text.lower()
                if field == "name_localizations" and chat_input
                else 1 <= len(text) <= (32 if field == "name_localizations" else 100)
            )
            if locale not in DISCORD_LOCALES or not fits:
                broken.append(f"{where} {field}[{locale}] = {text!r}")
    assert not broken, broken


async def test_every_description_is_translated_in_every_shipped_language(
    any_bot: KlingBot,
) -> None:
    untranslated = []

    def check(item: dict[str, Any], path: str) -> None:
        if item.get("description"):
            found = set((item.get("description_localizations") or {}).keys())
            untranslated.extend(f"{path} [{loc}]" for loc in TRANSLATED - found)
        for option in item.get("options") or []:
            check(option, f"{path} {option['name']}")

    for payload in await translated_payloads(any_bot):
        check(payload, payload["name"])
    assert not untranslated, untranslated


async def test_the_model_choices_read_in_each_language() -> None:
    """Job states in moderators' choices stay as typed; the models' labels are read."""
    async for kling in started(EVOLINK_MODELS="kling-o1-video-edit,kling-o1-video-edit-fast"):
        payloads = {p["name"]: p for p in await translated_payloads(kling)}
        model = next(o for o in payloads["edit"]["options"] if o["name"] == "model")
        for choice in model["choices"]:
            assert set(choice["name_localizations"]) >= TRANSLATED, choice
        fast = model["choices"][1]["name_localizations"]
        assert fast["de"] == "kling-o1-video-edit-fast · 6–20 s · 6,8 Credits/s"


async def test_names_stay_typed_the_same_and_the_menu_reads_in_each_language(
    bot: KlingBot,
) -> None:
    """Texts and guides name `/edit video_url:`: slash-command and option names are not
    translated. The message menu's name is only shown, so it is."""
    payloads = {p["name"]: p for p in await translated_payloads(bot)}
    assert not payloads["edit"].get("name_localizations")
    assert all(not option.get("name_localizations") for option in payloads["edit"]["options"])
    menu = payloads["Edit with Kling"]["name_localizations"]
    assert menu["de"] == "Mit Kling bearbeiten" and menu["ja"] == "Kling で編集"
    edit = payloads["edit"]["description_localizations"]
    assert edit["fr"] == "Monter un clip vidéo de 3–10 s avec Kling AI"  # the model's range


def test_the_result_buttons_read_in_the_posts_language() -> None:
    view = result_view(7, Catalogs().speaker("de"))
    labels = [
        child.item.label for child in view.children
        if isinstance(child, discord.ui.DynamicItem) and isinstance(child.item, discord.ui.Button)
    ]
    assert labels == ["Erneut bearbeiten", "Nochmal ausführen"]
