"""The emulator refuses, as Discord does, every request body its OpenAPI description refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.commands import CommandError, slash_command
from sandbox.discord_emulator.errors import DiscordError
from sandbox.discord_emulator.openapi import RequestBodyRules, default_spec_path
from sandbox.discord_emulator.testing import World
from tests.sandbox.wire import AUTH

pytestmark = pytest.mark.skipif(
    not default_spec_path().exists(),
    reason=f"Discord's OpenAPI description is missing at {default_spec_path()}",
)



async def _post(
    http: aiohttp.ClientSession, url: str, body: Any, method: str = "POST"
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=AUTH) as resp:
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw else None


def _modal(**text_input: Any) -> dict[str, Any]:
    field = {"type": 4, "custom_id": "prompt", "style": 2, "label": "Prompt", **text_input}
    return {
        "type": 9,
        "data": {
            "custom_id": "edit",
            "title": "Edit with Kling",
            "components": [{"type": 1, "components": [field]}],
        },
    }


CALLBACK = "/interactions/1234/token/callback"


@pytest.fixture(scope="module")
def rules() -> RequestBodyRules:
    loaded = RequestBodyRules.load()
    assert loaded is not None
    return loaded


def _refusal(rules: RequestBodyRules, path: str, body: Any) -> dict[str, Any]:
    with pytest.raises(DiscordError) as refused:
        rules.check("POST", path, body)
    assert refused.value.status == 400 and refused.value.code == 50035
    assert refused.value.message == "Invalid Form Body"
    return refused.value.errors or {}


def test_a_form_whose_text_input_allows_more_than_4000_characters_is_invalid(
    rules: RequestBodyRules,
) -> None:
    errors = _refusal(rules, CALLBACK, _modal(max_length=5000))

    field = errors["data"]["components"]["0"]["components"]["0"]
    [error] = field["max_length"]["_errors"]
    assert error["code"] == "NUMBER_TYPE_MAX" and "4000" in error["message"]
    rules.check("POST", CALLBACK, _modal(max_length=4000))  # within Discord's limit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"label": "L" * 46}, "label"),
        ({"custom_id": "c" * 101}, "custom_id"),
        ({"min_length": 4001}, "min_length"),
    ],
)
def test_text_input_limits_name_the_failing_field(
    rules: RequestBodyRules, change: dict[str, Any], field: str
) -> None:
    errors = _refusal(rules, CALLBACK, _modal(**change))

    assert field in errors["data"]["components"]["0"]["components"]["0"]


def test_a_form_title_over_45_characters_is_invalid(rules: RequestBodyRules) -> None:
    modal = _modal()
    modal["data"]["title"] = "T" * 46

    assert "title" in _refusal(rules, CALLBACK, modal)["data"]


async def test_a_row_of_six_buttons_is_invalid(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    button = {"type": 2, "style": 1, "label": "Go", "custom_id": "b"}
    row = {"type": 1, "components": [button] * 6}
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"

    status, body = await _post(http, url, {"content": "hi", "components": [row]})

    assert status == 400 and body["code"] == 50035
    assert "_errors" in body["errors"]["components"]["0"]["components"]
    five = {**row, "components": [button] * 5}
    status, _ = await _post(http, url, {"content": "hi", "components": [five]})
    assert status == 200


async def test_snowflakes_may_be_integers_as_discord_accepts_them(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    status, first = await _post(http, url, {"content": "first"})
    assert status == 200

    status, _ = await _post(
        http, url,
        {"content": "reply", "message_reference": {"message_id": int(first["id"])},
         "allowed_mentions": {"parse": [], "users": [world.member.user.id]}},
    )

    assert status == 200


async def test_command_schemas_follow_discords_name_and_description_rules(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    good = {"name": "edit", "description": "Edit a clip", "type": 1}

    for bad, field in [
        ({**good, "description": "d" * 101}, "description"),
        ({**good, "description": ""}, "description"),
        ({**good, "name": "Edit Clip"}, "name"),
        ({**good, "name": "e" * 33}, "name"),
    ]:
        status, body = await _post(http, url, [bad], method="PUT")
        assert status == 400 and body["code"] == 50035, bad
        assert field in body["errors"]["0"], body
    status, _ = await _post(http, url, [good], method="PUT")
    assert status == 200


@pytest.mark.parametrize(
    ("localized", "path"),
    [
        ({"description_localizations": {"de-DE": "Clip"}}, ("description_localizations", "de-DE")),
        ({"description_localizations": {"de": "d" * 101}}, ("description_localizations", "de")),
        ({"description_localizations": {"fr": ""}}, ("description_localizations", "fr")),
        ({"name_localizations": {"de": "Bearbeiten"}}, ("name_localizations", "de")),
        ({"name_localizations": {"ja": "編集 する"}}, ("name_localizations", "ja")),
        ({"name_localizations": {"xx": "edit"}}, ("name_localizations", "xx")),
        ({"options": [{"type": 3, "name": "prompt", "description": "P",
                       "description_localizations": {"ja": "p" * 101}}]},
         ("options", "0", "description_localizations", "ja")),
        ({"options": [{"type": 3, "name": "style", "description": "S", "choices": [
            {"name": "fast", "value": "f", "name_localizations": {"pt-PT": "rápido"}}]}]},
         ("options", "0", "choices", "0", "name_localizations", "pt-PT")),
    ],
)
async def test_localized_command_fields_follow_the_fields_own_rules(
    emu: DiscordEmulator,
    world: World,
    http: aiohttp.ClientSession,
    localized: dict[str, Any],
    path: tuple[str, ...],
) -> None:
    """Application-commands docs, "Localization": keys must be available locales
    (docs/reference#locales) and each localized value has the field's own limits."""
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    command = {"name": "edit", "description": "Edit a clip", "type": 1, **localized}

    status, body = await _post(http, url, [command], method="PUT")

    assert status == 400 and body["code"] == 50035, body
    node = body["errors"]["0"]
    for key in path:
        node = node[key]
    assert node


async def test_good_localizations_are_kept_and_shown_as_registered(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    command = {
        "name": "edit", "description": "Edit a clip", "type": 1,
        "description_localizations": {"de": "Clip bearbeiten", "es-419": "Editar", "ja": "編集"},
        "name_localizations": {"ja": "編集", "pt-BR": "editar"},
    }
    status, body = await _post(http, url, [command], method="PUT")
    assert status == 200
    assert body[0]["description_localizations"]["es-419"] == "Editar"
    assert body[0]["name_localizations"]["ja"] == "編集"


def test_without_the_description_bodies_are_not_checked(tmp_path: Path) -> None:
    assert RequestBodyRules.load(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    ("options", "failing"),
    [
        (
            [
                {"type": 3, "name": "style", "description": "Style"},
                {"type": 11, "name": "clip", "description": "Clip", "required": True},
            ],
            ("1", "required"),
        ),
        ([{"type": 3, "name": "Prompt", "description": "Prompt"}], ("0", "name")),
        ([{"type": 3, "name": "p", "description": "P", "max_length": 6001}], ("0", "max_length")),
        ([{"type": 3, "name": f"o{i}", "description": "O"} for i in range(26)], ("_errors",)),
        (
            [{"type": 3, "name": "style", "description": "S",
              "choices": [{"name": f"c{i}", "value": f"{i}"} for i in range(26)]}],
            ("0", "choices"),
        ),
        ([{"type": 3, "name": "o" * 33, "description": "O"}], ("0", "name")),
        ([{"type": 3, "name": "prompt", "description": ""}], ("0", "description")),
    ],
)
async def test_command_options_follow_discords_rules(
    emu: DiscordEmulator,
    world: World,
    http: aiohttp.ClientSession,
    options: list[dict[str, Any]],
    failing: tuple[str, ...],
) -> None:
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    command = {"name": "edit", "description": "Edit a clip", "type": 1, "options": options}

    status, body = await _post(http, url, [command], method="PUT")

    assert status == 400 and body["code"] == 50035
    node = body["errors"]["0"]["options"]
    for key in failing:
        node = node[key]
    assert node


@pytest.mark.parametrize(
    ("declared", "user_install_may_run"), [(None, True), ([0, 1], True), ([0], False)]
)
async def test_a_command_reaches_only_the_installations_it_declares(
    emu: DiscordEmulator,
    world: World,
    http: aiohttp.ClientSession,
    declared: list[int] | None,
    user_install_may_run: bool,
) -> None:
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    command: dict[str, Any] = {"name": "edit", "description": "Edit a clip", "type": 1}
    if declared is not None:
        command["integration_types"] = declared
    status, _ = await _post(http, url, [command], method="PUT")
    assert status == 200

    def invoke() -> Any:
        return slash_command(
            emu, world.app, world.guild, world.channel, world.member.user.id, "edit", {}, [],
            "en-US", installed_by="user",
        )

    if user_install_may_run:
        owners = invoke().payload["authorizing_integration_owners"]
        assert owners == {"1": str(world.member.user.id)}
    else:
        with pytest.raises(CommandError):
            invoke()


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "x" * 2001}, ("content",)),
        ({"embeds": [{"title": "t" * 257}]}, ("embeds", "0", "title")),
        (
            {"components": [{"type": 1, "components": [
                {"type": 2, "style": 1, "label": "Go", "custom_id": "c" * 101}]}]},
            ("components", "0", "components", "0", "custom_id"),
        ),
    ],
)
def test_a_followup_body_error_names_the_failing_field(
    rules: RequestBodyRules, method: str, body: dict[str, Any], field: tuple[str, ...]
) -> None:
    """The followup route takes a create or an update body (an undiscriminated union in the
    description); the error names the field that breaks both, not the body's root."""
    path = "/webhooks/1234/token" if method == "POST" else "/webhooks/1234/token/messages/5678"
    with pytest.raises(DiscordError) as refused:
        rules.check(method, path, body)

    node = refused.value.errors or {}
    for key in field:
        node = node[key]
    assert node["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
