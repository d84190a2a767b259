"""The sandbox layer's fixtures: the stand-ins themselves under test.

``media`` serves the module's own ``media_dir`` (each file makes the samples it needs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.testing import World, build_world
from sandbox.evolink_sim.testing import MediaServer
from tests.sandbox.wire import TOKEN


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    emulator = DiscordEmulator()
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
    assert emulator.state.internal_errors == []


@pytest.fixture
def world(emu: DiscordEmulator) -> World:
    """The emulator's ready-made scene, its bot authenticated by `wire.AUTH`."""
    return build_world(emu, token=TOKEN)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def media(media_dir: Path) -> AsyncIterator[MediaServer]:
    async with MediaServer(media_dir) as server:
        yield server
