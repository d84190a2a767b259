"""Acting as users (slash commands, context menus, buttons, selects, modals) and waiting.

Every ``send_*`` coroutine builds the INTERACTION_CREATE, dispatches it to the bot's newest
gateway session and returns the :class:`~.interactions.InteractionRecord` once the event is
on the wire (so ``ack_latency`` and the 3 s window start there). Waits re-check their
predicate on every state change; none of them polls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from . import commands
from .interactions import InteractionRecord
from .models import Application, Attachment, Channel, Member, Message

if TYPE_CHECKING:
    from .clock import Clock
    from .emulator import DiscordEmulator
    from .gateway import GatewayHub
    from .state import EmulatorState

Ref = Any  # an id, or a model object with an ``id`` (a Member counts as its user's id)


def ref_id(value: Ref) -> int:
    if isinstance(value, Member):
        return value.user.id
    if isinstance(value, InteractionRecord):
        return value.id
    return int(value.id if hasattr(value, "id") else value)


class DriverMixin:
    """User-side actions and waits of :class:`~.emulator.DiscordEmulator`."""

    state: EmulatorState
    gateway: GatewayHub
    clock: Clock

    @property
    def _emu(self) -> DiscordEmulator:
        return cast("DiscordEmulator", self)

    def application(self, app: Application | int | None = None) -> Application:
        """The given application, or the only one there is."""
        if isinstance(app, Application):
            return app
        if app is not None:
            return self.state.applications[int(app)]
        if len(self.state.applications) != 1:
            raise ValueError("several (or no) applications exist: pass app=")
        return next(iter(self.state.applications.values()))

    async def _dispatch(
        self,
        ix: InteractionRecord,
        timeout: float,  # noqa: ASYNC109
    ) -> InteractionRecord:
        def on_sent(at: float) -> None:
            ix.mark_sent(at, self.clock.now())
            self.state.changed()

        if not self.gateway.sessions_for(ix.application_id):
            raise RuntimeError(
                f"application {ix.application_id} has no gateway session; is the bot connected?"
            )
        self.state.interactions[ix.id] = ix
        self.state.interactions_by_token[ix.token] = ix
        guild_id = ix.payload.get("guild_id")
        self.gateway.dispatch(
            "INTERACTION_CREATE", ix.payload, app_id=ix.application_id,
            guild_id=int(guild_id) if guild_id else None, on_sent=on_sent,
        )
        self.state.changed()
        await ix.wait_sent(timeout)
        return ix

    async def send_slash_command(
        self,
        guild: Ref,
        channel: Ref,
        user: Ref,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        attachments: Sequence[Attachment] = (),
        locale: str | None = None,
        app: Application | int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
        installed_by: str = "guild",
    ) -> InteractionRecord:
        """Invoke ``/name`` (``"group sub"`` paths allowed) as a member.

        ``options`` maps option names to values typed by the registered schema: Attachment
        objects (from :meth:`add_attachment`) for ATTACHMENT options, members/users/roles/
        channels or their ids for the snowflake types.
        """
        application = self.application(app)
        ix = commands.slash_command(
            self._emu,
            application,
            self.state.guild(ref_id(guild)),
            self.state.channel(ref_id(channel)),
            ref_id(user),
            name,
            dict(options or {}),
            list(attachments),
            locale,
            installed_by,
        )
        return await self._dispatch(ix, timeout)

    async def send_message_command(
        self,
        guild: Ref,
        channel: Ref,
        user: Ref,
        name: str,
        message: Ref,
        *,
        app: Application | int | None = None,
        locale: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """A message context-menu command on ``message``."""
        target = self.state.messages[ref_id(message)]
        ix = commands.context_menu(
            self._emu,
            self.application(app),
            self.state.guild(ref_id(guild)),
            self.state.channel(ref_id(channel)),
            ref_id(user),
            name,
            message=target,
            locale=locale,
        )
        return await self._dispatch(ix, timeout)

    async def send_user_command(
        self,
        guild: Ref,
        channel: Ref,
        user: Ref,
        name: str,
        target: Ref,
        *,
        app: Application | int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """A user context-menu command on ``target``."""
        ix = commands.context_menu(
            self._emu,
            self.application(app),
            self.state.guild(ref_id(guild)),
            self.state.channel(ref_id(channel)),
            ref_id(user),
            name,
            target_user=ref_id(target),
        )
        return await self._dispatch(ix, timeout)

    def _component_message(self, channel: Channel, user_id: int, message_id: int) -> Message:
        message = self.state.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel.id:
            raise commands.CommandError(f"no message {message_id} in channel {channel.id}")
        if message.ephemeral and message.visible_to != user_id:
            raise commands.CommandError(f"message {message_id} is ephemeral for someone else")
        return message

    async def click_button(
        self,
        channel: Ref,
        user: Ref,
        message: Ref,
        custom_id: str,
        *,
        app: Application | int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """Click the button ``custom_id`` on a message (component interaction type 3)."""
        return await self._component(channel, user, message, custom_id, None, app, timeout)

    async def select_menu(
        self,
        channel: Ref,
        user: Ref,
        message: Ref,
        custom_id: str,
        values: Sequence[str],
        *,
        app: Application | int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """Choose ``values`` in the select menu ``custom_id`` on a message."""
        return await self._component(channel, user, message, custom_id, list(values), app, timeout)

    async def _component(
        self,
        channel: Ref,
        user: Ref,
        message: Ref,
        custom_id: str,
        values: list[str] | None,
        app: Application | int | None,
        timeout: float,  # noqa: ASYNC109
    ) -> InteractionRecord:
        chan = self.state.channel(ref_id(channel))
        user_id = ref_id(user)
        target = self._component_message(chan, user_id, ref_id(message))
        guild = self.state.guild(chan.guild_id)
        ix = commands.component(
            self._emu, self.application(app), guild, chan, user_id, target, custom_id, values
        )
        return await self._dispatch(ix, timeout)

    async def submit_modal(
        self,
        opener: InteractionRecord | int,
        values: dict[str, Any],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        """Submit the modal that ``opener`` answered with (callback type 9).

        ``values`` maps each input's ``custom_id`` to its text (or list, for selects).
        """
        record = (
            opener
            if isinstance(opener, InteractionRecord)
            else (self.state.interactions[int(opener)])
        )
        ix = commands.modal_submit(
            self._emu, self.application(record.application_id), record, values
        )
        return await self._dispatch(ix, timeout)

    # -- waiting -------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109
        description: str | None = None,
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return it."""
        return await self.state.wait_for(predicate, timeout, description)

    async def wait_until_ready(
        self,
        app: Application | int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until the bot identified (or resumed) and holds a live gateway connection."""
        application = self.application(app)
        await self.wait_for(
            lambda: self.gateway.connected(application.id),
            timeout,
            f"a gateway session of application {application.id}",
        )

    async def wait_for_ack(
        self,
        ix: InteractionRecord,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> InteractionRecord:
        await self.wait_for(lambda: ix.acknowledged, timeout, f"an answer to interaction {ix.id}")
        return ix

    async def wait_for_response(
        self,
        ix: InteractionRecord,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Message:
        """The first response of ``ix`` that is no longer "thinking" and matches."""

        def find() -> Message | None:
            return next(
                (m for m in ix.responses if not m.loading and (predicate is None or predicate(m))),
                None,
            )

        found: Message = await self.wait_for(find, timeout, f"a response to interaction {ix.id}")
        return found

    async def wait_for_message(
        self,
        channel: Ref,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Message:
        """The first (non-ephemeral, non-loading) message of a channel that matches."""
        channel_id = ref_id(channel)

        def find() -> Message | None:
            return next(
                (
                    m
                    for m in self.state.channel_history(channel_id)
                    if not m.loading and (predicate is None or predicate(m))
                ),
                None,
            )

        found: Message = await self.wait_for(find, timeout, f"a message in {channel_id}")
        return found

    async def wait_for_thread(
        self,
        parent: Ref | None = None,
        predicate: Callable[[Channel], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Channel:
        parent_id = ref_id(parent) if parent is not None else None

        def find() -> Channel | None:
            return next(
                (t for t in self.state.threads_of(parent_id) if predicate is None or predicate(t)),
                None,
            )

        found: Channel = await self.wait_for(find, timeout, "a thread")
        return found
