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


@pytest.fixture
async def bot() -> AsyncIterator[KlingBot]:
    kling = KlingBot(Settings(_env_file=None), sync_only=True)  # type: ignore[call-arg]
    await kling.setup_hook()
    try:
        yield kling
    finally:
        await kling.close()


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
