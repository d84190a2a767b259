from __future__ import annotations

import discord.gateway
import discord.http
import pytest

from bot.discord_routing import route_discord
from bot.settings import Settings
from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.testing import build_world


@pytest.fixture
def restore_discord_hosts():  # type: ignore[no-untyped-def]
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


async def test_gateway_is_discovered_from_a_non_discord_api_base(restore_discord_hosts) -> None:  # type: ignore[no-untyped-def]
    async with DiscordEmulator() as emu:
        build_world(emu, token="routing-token")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, DISCORD_API_BASE=emu.api_base, DISCORD_TOKEN="routing-token"
        )
        await route_discord(settings)
        assert discord.http.Route.BASE == emu.api_base
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).startswith("ws://127.0.0.1")


async def test_real_discord_is_left_alone(restore_discord_hosts) -> None:  # type: ignore[no-untyped-def]
    before = discord.http.Route.BASE
    await route_discord(Settings(_env_file=None))  # type: ignore[call-arg]
    assert discord.http.Route.BASE == before
