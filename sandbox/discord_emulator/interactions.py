"""Interaction records and Discord's rules for answering them.

* the callback must arrive within ``ack_window`` (3 s) of dispatch, else 404 / 10062;
* a second callback gets 400 / 40060;
* webhook calls (followups, ``@original``) before any callback get 404 / 10015;
* the token dies ``token_lifetime`` (15 min) after dispatch: 401 / 50027;
* the first followup after a deferral replaces the "thinking" message.

Deadlines use the emulator's rule clock (advanceable); ``ack_latency`` uses real time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors, messages, payloads
from .components import check_modal_layout
from .models import Message, MessageFlags, MessageType

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9

_ALLOWED_RESPONSES = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE,
        UPDATE_MESSAGE,
        MODAL,
    },
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
}
_MESSAGE_FLAGS = MessageFlags.EPHEMERAL | MessageFlags.SUPPRESS_EMBEDS | 4096 | 32768


@dataclass
class AckAttempt:
    """One interaction callback, successful or not."""

    response_type: int | None
    status: int
    code: int | None
    latency: float  # real seconds from dispatch to the callback arriving
    elapsed: float  # rule-clock seconds from dispatch


@dataclass
class InteractionRecord:
    id: int
    token: str
    type: int
    application_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    name: str
    payload: dict[str, Any]
    created_at: float
    command_type: int | None = None
    dispatched_at: float | None = None
    dispatched_mono: float | None = None
    ack_type: int | None = None
    ack_latency: float | None = None
    original_message_id: int | None = None
    target_message_id: int | None = None
    modal: dict[str, Any] | None = None
    autocomplete_choices: list[dict[str, Any]] | None = None
    thinking_replaced: bool = False
    attempts: list[AckAttempt] = field(default_factory=list)
    webhook_errors: list[tuple[str, str, int, int | None]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    _sent: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def acknowledged(self) -> bool:
        return self.ack_type is not None

    @property
    def deferred(self) -> bool:
        return self.ack_type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE)

    @property
    def original(self) -> Message | None:
        return next((m for m in self.messages if m.id == self.original_message_id), None)

    @property
    def responses(self) -> list[Message]:
        """Messages this interaction produced (original first, then followups)."""
        return [m for m in self.messages if not m.deleted]

    @property
    def followups(self) -> list[Message]:
        return [m for m in self.responses if m.id != self.original_message_id]

    @property
    def ephemeral_responses(self) -> list[Message]:
        return [m for m in self.responses if m.ephemeral]

    @property
    def errors(self) -> list[int]:
        """Discord error codes answered to callbacks and webhook calls, in order."""
        codes = [a.code for a in self.attempts if a.code is not None]
        return codes + [e[3] for e in self.webhook_errors if e[3] is not None]

    def mark_sent(self, at: float, rule_now: float) -> None:
        if self.dispatched_mono is None:
            self.dispatched_mono = at
            self.dispatched_at = rule_now
        self._sent.set()

    async def wait_sent(
        self,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        await asyncio.wait_for(self._sent.wait(), timeout)


def _metadata(emu: DiscordEmulator, ix: InteractionRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "id": str(ix.id),
        "type": ix.type,
        "user": payloads.user(emu.state.users[ix.user_id]),
        "authorizing_integration_owners": {"0": str(ix.guild_id)} if ix.guild_id else {},
    }
    if ix.type == APPLICATION_COMMAND:
        meta["name"] = ix.name
        meta["command_type"] = ix.command_type or 1
    if ix.target_message_id is not None:
        meta["interacted_message_id"] = str(ix.target_message_id)
    return meta


def _new_message(
    emu: DiscordEmulator,
    ix: InteractionRecord,
    out: messages.Outgoing,
    flags: int,
    *,
    original: bool,
    at: str = "",
) -> Message:
    app = emu.state.applications[ix.application_id]
    msg_type = MessageType.DEFAULT
    if original and ix.type == APPLICATION_COMMAND:
        msg_type = (
            MessageType.CHAT_INPUT_COMMAND
            if (ix.command_type or 1) == 1
            else MessageType.CONTEXT_MENU_COMMAND
        )
    meta = _metadata(emu, ix)
    if not original and ix.original_message_id is not None:
        meta["original_response_message_id"] = str(ix.original_message_id)
    message = messages.create(
        emu,
        channel=emu.state.channel(ix.channel_id),
        author=app.bot,
        out=out,
        msg_type=msg_type,
        flags=flags,
        visible_to=ix.user_id,
        webhook_id=app.id,
        application_id=app.id,
        interaction_id=ix.id,
        interaction_metadata=meta,
        at=at,
    )
    ix.messages.append(message)
    return message


def _upload_limit(ix: InteractionRecord) -> int:
    return int(ix.payload.get("attachment_size_limit", 10 * 1024 * 1024))


def callback(
    emu: DiscordEmulator, ix: InteractionRecord, out: messages.Outgoing, received: float
) -> dict[str, Any]:
    """Handle ``POST /interactions/{id}/{token}/callback``; return the with_response body."""
    rtype = out.payload.get("type")
    dispatched = ix.dispatched_mono if ix.dispatched_mono is not None else received
    latency = received - dispatched
    elapsed = emu.clock.now() - (
        ix.dispatched_at if ix.dispatched_at is not None else emu.clock.now()
    )
    try:
        answer = _callback(emu, ix, out, rtype)
    except errors.DiscordError as exc:
        ix.attempts.append(AckAttempt(rtype, exc.status, exc.code, latency, elapsed))
        raise
    ix.ack_type = rtype
    ix.ack_latency = latency
    ix.attempts.append(AckAttempt(rtype, 200, None, latency, elapsed))
    return answer


def _callback(
    emu: DiscordEmulator, ix: InteractionRecord, out: messages.Outgoing, rtype: Any
) -> dict[str, Any]:
    if ix.ack_type is not None:
        raise errors.already_acknowledged()
    if ix.dispatched_at is not None and emu.clock.now() - ix.dispatched_at > emu.ack_window:
        raise errors.unknown_interaction()
    if rtype not in _ALLOWED_RESPONSES.get(ix.type, set()):
        raise errors.invalid_form(
            "type",
            "INTERACTION_RESPONSE_TYPE_INVALID",
            "Interaction response type is invalid for this interaction.",
        )
    data: dict[str, Any] = out.payload.get("data") or {}
    flags = int(data.get("flags") or 0) & _MESSAGE_FLAGS
    answer: dict[str, Any] = {"type": rtype}
    message: Message | None = None
    if rtype == CHANNEL_MESSAGE:
        messages.check_files(out.files, _upload_limit(ix))
        message = _new_message(
            emu, ix, messages.Outgoing(data, out.files), flags, original=True, at="data."
        )
        ix.original_message_id = message.id
        answer["message"] = payloads.message(emu.state, message)
    elif rtype == DEFERRED_CHANNEL_MESSAGE:
        loading = MessageFlags.LOADING | (flags & MessageFlags.EPHEMERAL)
        message = _new_message(emu, ix, messages.Outgoing({}), loading, original=True)
        ix.original_message_id = message.id
    elif rtype in (DEFERRED_UPDATE, UPDATE_MESSAGE):
        message = emu.state.messages.get(ix.target_message_id or 0)
        if rtype == UPDATE_MESSAGE and message is not None:
            messages.check_files(out.files, _upload_limit(ix))
            messages.edit(emu, message, messages.Outgoing(data, out.files), at="data.")
            answer["message"] = payloads.message(emu.state, message)
        if message is not None and all(m.id != message.id for m in ix.messages):
            ix.messages.insert(0, message)
        ix.original_message_id = ix.target_message_id
    elif rtype == MODAL:
        if not data.get("custom_id") or not data.get("title") or not data.get("components"):
            raise errors.invalid_form(
                "data", "BASE_TYPE_REQUIRED", "A modal needs custom_id, title and components."
            )
        check_modal_layout(data["components"])
        ix.modal = data
    elif rtype == AUTOCOMPLETE_RESULT:
        ix.autocomplete_choices = list(data.get("choices") or [])
    return {
        "interaction": {
            "id": str(ix.id),
            "type": ix.type,
            "response_message_id": str(message.id) if message is not None else None,
            "response_message_loading": rtype == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message is not None and message.ephemeral),
        },
        "resource": answer,
    }


# -- the interaction webhook (/webhooks/{application_id}/{token}) ---------------------------


def webhook_interaction(emu: DiscordEmulator, app_id: int, token: str) -> InteractionRecord:
    ix = emu.state.interactions_by_token.get(token)
    if ix is None or ix.application_id != app_id:
        raise errors.unknown_webhook()
    if ix.dispatched_at is not None and emu.clock.now() - ix.dispatched_at > emu.token_lifetime:
        raise errors.invalid_webhook_token()
    if ix.ack_type is None:
        raise errors.unknown_webhook()
    return ix


def webhook_message(ix: InteractionRecord, message_id: str) -> Message:
    if message_id == "@original":
        wanted = ix.original_message_id
    else:
        try:
            wanted = int(message_id)
        except ValueError:
            raise errors.unknown_message() from None
    found = next((m for m in ix.messages if m.id == wanted and not m.deleted), None)
    if found is None:
        raise errors.unknown_message()
    return found


def followup(emu: DiscordEmulator, ix: InteractionRecord, out: messages.Outgoing) -> Message:
    messages.check_files(out.files, _upload_limit(ix))
    original = ix.original
    if (
        ix.ack_type == DEFERRED_CHANNEL_MESSAGE
        and original is not None
        and original.loading
        and not original.deleted
    ):
        ix.thinking_replaced = True
        return messages.edit(emu, original, out)
    flags = int(out.payload.get("flags") or 0) & _MESSAGE_FLAGS
    return _new_message(emu, ix, out, flags, original=False)


def edit_message(
    emu: DiscordEmulator, ix: InteractionRecord, message: Message, out: messages.Outgoing
) -> Message:
    messages.check_files(out.files, _upload_limit(ix))
    return messages.edit(emu, message, out)
