"""Gateway sharding as Discord's gateway docs describe it, at the wire."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.testing import World
from tests.sandbox.test_discord_emulator_protocol import ZlibClient
from tests.sandbox.wire import AUTH, TOKEN


async def _identify(
    http: aiohttp.ClientSession, emu: DiscordEmulator, shard: list[int]
) -> tuple[list[dict[str, Any]], int | None]:
    """IDENTIFY on `shard`; the READY and GUILD_CREATE events, or the close code."""
    async with http.ws_connect(emu.gateway_url) as ws:
        gw = ZlibClient(ws)
        await gw.receive()  # HELLO
        await gw.send(2, {"token": TOKEN, "intents": 1, "properties": {}, "shard": shard})
        events: list[dict[str, Any]] = []
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return events, ws.close_code
            events.append(json.loads(msg.data))
            guilds = len(events[0]["d"]["guilds"]) if events else 0
            if len(events) == 1 + guilds:
                return events, None


def _guild_on_shard(emu: DiscordEmulator, shard_id: int, count: int) -> int:
    while True:
        emu.advance(0.001)  # the next snowflake's timestamp, hence its shard, moves on
        guild = emu.create_guild("Another Guild")
        if (guild.id >> 22) % count == shard_id:
            return guild.id


async def test_each_shard_gets_the_guilds_it_owns(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    first_shard = (world.guild.id >> 22) % 2
    other = _guild_on_shard(emu, 1 - first_shard, 2)
    owned = {s: {g.id for g in emu.state.guilds.values() if (g.id >> 22) % 2 == s} for s in (0, 1)}

    for shard_id in (0, 1):
        events, closed = await _identify(http, emu, [shard_id, 2])
        assert closed is None
        ready, *created = events
        assert ready["d"]["shard"] == [shard_id, 2]
        assert {int(g["id"]) for g in ready["d"]["guilds"]} == owned[shard_id]
        assert {int(e["d"]["id"]) for e in created} == owned[shard_id]
    assert world.guild.id in owned[first_shard] and other in owned[1 - first_shard]


@pytest.mark.parametrize(("shard", "code"), [([2, 2], 4010), ([0, 0], 4010)])
async def test_an_invalid_shard_is_closed_with_4010(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession, shard: list[int], code: int
) -> None:
    assert (await _identify(http, emu, shard))[1] == code


async def test_too_many_guilds_on_one_shard_is_closed_with_4011(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    emu.gateway.max_guilds_per_shard = 1
    emu.create_guild("Second Guild")

    assert (await _identify(http, emu, [0, 1]))[1] == 4011
    async with http.get(f"{emu.api_base}/gateway/bot", headers=AUTH) as resp:
        assert (await resp.json())["shards"] == 1  # one per 1,000 guilds
    emu.guilds_per_recommended_shard = 1
    async with http.get(f"{emu.api_base}/gateway/bot", headers=AUTH) as resp:
        assert (await resp.json())["shards"] == 2
