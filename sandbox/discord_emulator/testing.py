"""Helpers for running a real discord.py client against the emulator (tests, demo, bench).

``discord`` is imported lazily so the emulator itself never depends on discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .models import Application, Channel, Guild, Member
from .permissions import DEFAULT_BOT

if TYPE_CHECKING:
    from .emulator import DiscordEmulator


class Endpoints(Protocol):
    """Where a client finds the emulator: a :class:`DiscordEmulator` or any object with
    these two attributes (e.g. the JSON printed by ``python -m sandbox.discord_emulator``)."""

    @property
    def api_base(self) -> str: ...

    @property
    def gateway_url(self) -> str: ...


@dataclass
class World:
    """A ready-made scene: one application, one guild, a #general channel and a member."""

    app: Application
    guild: Guild
    channel: Channel
    member: Member


def build_world(
    emu: DiscordEmulator,
    *,
    token: str = "test-token",
    app_name: str = "Kling",
    premium_tier: int = 0,
    bot_permissions: int = DEFAULT_BOT,
    member_name: str = "alice",
) -> World:
    app = emu.create_application(app_name, bot_token=token)
    guild = emu.create_guild(
        "Test Guild", premium_tier=premium_tier, bot_permissions=bot_permissions
    )
    channel = emu.create_text_channel(guild.id, "general")
    member = emu.create_member(guild.id, member_name)
    return World(app, guild, channel, member)


@contextlib.contextmanager
def discord_pointed_at(emu: Endpoints) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at the emulator; restore after."""
    import discord.gateway
    import discord.http
    import yarl

    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = emu.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def running_bot(
    emu: Endpoints,
    bot: Any,
    token: str,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> AsyncIterator[Any]:
    """Log ``bot`` in, connect it, wait for ``on_ready``; close it on exit.

    Pass ``guild_ready_timeout=0.01`` to the bot so ``on_ready`` does not wait 2 s.
    """
    with discord_pointed_at(emu):
        await bot.login(token)
        runner = asyncio.create_task(bot.connect(reconnect=True), name="discord-bot")
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {runner, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if runner in done:
                runner.result()
                raise RuntimeError("the bot stopped before it was ready")
            if ready not in done:
                raise TimeoutError(f"the bot was not ready within {timeout}s")
            yield bot
        finally:
            ready.cancel()
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(runner, 5.0)


class Probe:
    """What a test bot's handlers saw, with events to wait on and gates to hold them.

    Handlers call ``probe.record(key, value)``; tests ``await probe.wait(key)``. A handler
    can ``await probe.gate(key)`` to pause until the test calls ``probe.open(key)``.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._gates: dict[str, asyncio.Event] = {}

    def _event(self, table: dict[str, asyncio.Event], key: str) -> asyncio.Event:
        return table.setdefault(key, asyncio.Event())

    def record(self, key: str, value: Any = True) -> None:
        self.values[key] = value
        self._event(self._events, key).set()

    def forget(self, key: str) -> None:
        """Drop a recorded value so the key can be waited on again."""
        self.values.pop(key, None)
        self._events.pop(key, None)

    async def wait(
        self,
        key: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Any:
        await asyncio.wait_for(self._event(self._events, key).wait(), timeout)
        return self.values[key]

    async def gate(
        self,
        key: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        await asyncio.wait_for(self._event(self._gates, key).wait(), timeout)

    def open(self, key: str) -> None:
        self._event(self._gates, key).set()
