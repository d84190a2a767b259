"""How many components a message or a modal holds, on every route that sends one
(Component Reference: legacy messages ≤ 5 action rows, IS_COMPONENTS_V2 messages ≤ 40
components in all, a row ≤ 5 buttons or one select; a modal 1–5 components)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.commands import component, slash_command
from sandbox.discord_emulator.interactions import InteractionRecord
from sandbox.discord_emulator.testing import World
from tests.sandbox.wire import AUTH

IS_COMPONENTS_V2 = 1 << 15
BUTTON = {"type": 2, "style": 1, "label": "Go", "custom_id": "go"}
SELECT = {"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}]}
TEXT = {"type": 10, "content": "line"}
ACCEPTED = (200, 204)  # a callback or a followup without `?wait` answers 204


def _row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def _rows(count: int) -> list[dict[str, Any]]:
    return [_row({**BUTTON, "custom_id": f"go{n}"}) for n in range(count)]


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=AUTH) as resp:
        raw = await resp.read()
        return resp.status, await resp.json() if raw else None


def _sent(emu: DiscordEmulator, ix: InteractionRecord) -> InteractionRecord:
    """The interaction as if the bot had been sent it (registered as the driver does)."""
    emu.state.interactions[ix.id] = ix
    emu.state.interactions_by_token[ix.token] = ix
    return ix


def _invoke(emu: DiscordEmulator, world: World) -> InteractionRecord:
    return _sent(
        emu,
        slash_command(
            emu, world.app, world.guild, world.channel, world.member.user.id, "edit", {}, [], None
        ),
    )


@pytest.fixture
async def registered(emu: DiscordEmulator, world: World, http: aiohttp.ClientSession) -> None:
    url = f"{emu.api_base}/applications/{world.app.id}/guilds/{world.guild.id}/commands"
    status, _ = await _call(http, "PUT", url, [{"name": "edit", "description": "E", "type": 1}])
    assert status == 200


ROUTES = [
    "channel message",
    "channel message edit",
    "interaction response",
    "component update",
    "followup",
    "original response edit",
]


Send = Callable[[dict[str, Any]], Awaitable[tuple[int, Any, str]]]


def _sender(route: str, emu: DiscordEmulator, world: World, http: aiohttp.ClientSession) -> Send:
    """Sends a message body on ``route``; answers (status, body, where the body's
    components sit in an error)."""
    channel_url = f"{emu.api_base}/channels/{world.channel.id}/messages"

    async def send(body: dict[str, Any]) -> tuple[int, Any, str]:
        if route == "channel message":
            return (*await _call(http, "POST", channel_url, body), "components")
        if route == "channel message edit":
            _, posted = await _call(http, "POST", channel_url, {"content": "status"})
            url = f"{channel_url}/{posted['id']}"
            return (*await _call(http, "PATCH", url, body), "components")
        ix = _invoke(emu, world)
        callback = f"{emu.api_base}/interactions/{ix.id}/{ix.token}/callback"
        if route == "interaction response":
            answer = {"type": 4, "data": body}
            return (*await _call(http, "POST", callback, answer), "data.components")
        if route == "component update":
            await _call(http, "POST", callback, {"type": 4, "data": {"components": _rows(1)}})
            assert ix.original is not None
            click = _sent(
                emu,
                component(
                    emu, world.app, world.guild, world.channel, world.member.user.id,
                    ix.original, "go0", None,
                ),
            )
            url = f"{emu.api_base}/interactions/{click.id}/{click.token}/callback"
            return (*await _call(http, "POST", url, {"type": 7, "data": body}), "data.components")
        await _call(http, "POST", callback, {"type": 5})
        webhook = f"{emu.api_base}/webhooks/{world.app.id}/{ix.token}"
        if route == "followup":
            return (*await _call(http, "POST", webhook, body), "components")
        url = f"{webhook}/messages/@original"
        return (*await _call(http, "PATCH", url, body), "components")

    return send


@pytest.fixture(params=ROUTES)
def send(
    request: pytest.FixtureRequest,
    registered: None,
    emu: DiscordEmulator,
    world: World,
    http: aiohttp.ClientSession,
) -> Send:
    return _sender(request.param, emu, world, http)


def _errors_at(body: Any, field: str) -> list[dict[str, Any]]:
    node = body["errors"]
    for key in field.split("."):
        node = node[key]
    errors: list[dict[str, Any]] = node["_errors"]
    return errors


async def test_a_message_without_components_v2_holds_at_most_five_action_rows(send: Send) -> None:
    status, body, field = await send({"content": "pick", "components": _rows(6)})

    assert (status, body["code"]) == (400, 50035), body
    [error] = _errors_at(body, field)
    assert error["code"] == "BASE_TYPE_MAX_LENGTH" and "5" in error["message"]
    status, body, _ = await send({"content": "pick", "components": _rows(5)})
    assert status in ACCEPTED, body


async def test_an_action_row_holds_five_buttons_or_one_select(send: Send) -> None:
    status, body, field = await send({"content": "pick", "components": [_row(SELECT, BUTTON)]})

    assert (status, body["code"]) == (400, 50035), body
    [error] = _errors_at(body, f"{field}.0.components")
    assert error["code"] == "COMPONENT_LAYOUT_WIDTH_EXCEEDED"
    status, body, _ = await send({"content": "pick", "components": [_row(SELECT)]})
    assert status in ACCEPTED, body


@pytest.mark.parametrize(
    "send", ["channel message", "followup", "interaction response"], indirect=True
)
async def test_a_components_v2_message_holds_forty_components_nested_ones_counted(
    send: Send,
) -> None:
    six_rows = {"flags": IS_COMPONENTS_V2, "components": _rows(6)}  # 12 components
    container = {"type": 17, "components": [TEXT] * 39}  # 40 with the container

    assert (await send(six_rows))[0] in ACCEPTED
    assert (await send({"flags": IS_COMPONENTS_V2, "components": [container]}))[0] in ACCEPTED
    status, body, field = await send(
        {"flags": IS_COMPONENTS_V2, "components": [container, TEXT]}
    )

    assert (status, body["code"]) == (400, 50035), body
    [error] = _errors_at(body, field)
    assert error["code"] == "BASE_TYPE_MAX_LENGTH" and "40" in error["message"]


async def test_an_edit_keeps_the_components_v2_limits_of_the_message(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    """The flag "can't be removed from that message" once sent (Component Reference)."""
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    status, posted = await _call(
        http, "POST", url, {"flags": IS_COMPONENTS_V2, "components": [TEXT]}
    )
    assert status == 200

    status, body = await _call(http, "PATCH", f"{url}/{posted['id']}", {"components": _rows(6)})

    assert status in ACCEPTED, body


@pytest.mark.usefixtures("registered")
async def test_a_modal_holds_one_to_five_components(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    def modal(count: int) -> dict[str, Any]:
        fields = [
            _row({"type": 4, "custom_id": f"f{n}", "style": 1, "label": "Field"})
            for n in range(count)
        ]
        return {"type": 9, "data": {"custom_id": "form", "title": "Form", "components": fields}}

    answers = []
    for count in (6, 0, 5):
        ix = _invoke(emu, world)
        url = f"{emu.api_base}/interactions/{ix.id}/{ix.token}/callback"
        answers.append(await _call(http, "POST", url, modal(count)))

    (too_many, body), (empty, _), (five, _) = answers
    assert (too_many, body["code"]) == (400, 50035)
    [error] = _errors_at(body, "data.components")
    assert error["code"] == "BASE_TYPE_MAX_LENGTH" and "5" in error["message"]
    assert empty == 400
    assert five == 204
