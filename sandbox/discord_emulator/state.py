"""All emulator state in one object, with lookups and change notification.

Every mutation ends with :meth:`EmulatorState.changed`, which wakes every
:meth:`EmulatorState.wait_for` so waiters re-check their predicate: no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import errors
from .cdn import CdnSigner
from .clock import Clock, SnowflakeGenerator
from .models import (
    Application,
    Attachment,
    Channel,
    Download,
    Guild,
    Member,
    Message,
    RestCall,
    ThreadCreation,
    User,
)

if TYPE_CHECKING:
    from .interactions import InteractionRecord


class EmulatorState:
    def __init__(self, clock: Clock, cdn: CdnSigner | None = None) -> None:
        self.clock = clock
        self.cdn = cdn or CdnSigner(clock)
        self.ids = SnowflakeGenerator(clock)
        self.applications: dict[int, Application] = {}
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.channel_messages: dict[int, list[int]] = {}
        self.attachments: dict[int, Attachment] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.rest_calls: list[RestCall] = []
        self.thread_creations: list[ThreadCreation] = []
        self.downloads: list[Download] = []
        #: Unexpected exceptions inside the emulator (should stay empty; tests assert it).
        self.internal_errors: list[str] = []
        self.version = 0
        self._event = asyncio.Event()

    # -- change notification -------------------------------------------------------------

    def changed(self) -> None:
        """Record that something changed and wake all waiters."""
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109
        description: str | None = None,
    ) -> Any:
        """Wait until ``predicate()`` is truthy, re-checking it after every change.

        Returns the predicate's value. Raises :class:`TimeoutError` with a description.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._event
            value = predicate()
            if inspect.isawaitable(value):
                raise TypeError("wait_for predicates must be plain functions, not coroutines")
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = description or getattr(predicate, "__name__", "condition")
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_changed(
        self,
        since: int,
        timeout: float,  # noqa: ASYNC109
    ) -> int:
        """Wait until ``version`` exceeds ``since`` (or the timeout passes); return version."""
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: self.version > since, timeout)
        return self.version

    # -- lookups that answer like Discord ------------------------------------------------

    def application_by_token(self, token: str) -> Application | None:
        for app in self.applications.values():
            if app.token == token:
                return app
        return None

    def guild(self, guild_id: int) -> Guild:
        found = self.guilds.get(guild_id)
        if found is None:
            raise errors.unknown_guild()
        return found

    def channel(self, channel_id: int) -> Channel:
        found = self.channels.get(channel_id)
        if found is None:
            raise errors.unknown_channel()
        return found

    def message(self, channel_id: int, message_id: int) -> Message:
        found = self.messages.get(message_id)
        if found is None or found.channel_id != channel_id or found.deleted or found.ephemeral:
            raise errors.unknown_message()
        return found

    def member(self, guild_id: int, user_id: int) -> Member:
        found = self.guild(guild_id).members.get(user_id)
        if found is None:
            raise errors.unknown_member()
        return found

    def parent_of(self, channel: Channel) -> Channel | None:
        return self.channels.get(channel.parent_id) if channel.parent_id is not None else None

    # -- messages ------------------------------------------------------------------------

    def add_message(self, message: Message) -> None:
        message.snapshot(message.timestamp)
        self.messages[message.id] = message
        if not message.ephemeral:
            self.channel_messages.setdefault(message.channel_id, []).append(message.id)
            channel = self.channels.get(message.channel_id)
            if channel is not None:
                channel.last_message_id = message.id
                if channel.is_thread:
                    channel.message_count += 1

    def channel_history(
        self, channel_id: int, *, include_deleted: bool = False, visible_to: int | None = None
    ) -> list[Message]:
        """Messages of a channel, oldest first; ``visible_to`` adds that user's ephemerals."""
        found = [self.messages[i] for i in self.channel_messages.get(channel_id, [])]
        if visible_to is not None:
            found += [
                m
                for m in self.messages.values()
                if m.ephemeral and m.channel_id == channel_id and m.visible_to == visible_to
            ]
            found.sort(key=lambda m: m.id)
        return [m for m in found if include_deleted or not m.deleted]

    def threads_of(self, parent_id: int | None = None) -> list[Channel]:
        return [
            c
            for c in self.channels.values()
            if c.is_thread and (parent_id is None or c.parent_id == parent_id)
        ]
