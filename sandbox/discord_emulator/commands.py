"""Building INTERACTION_CREATE payloads the way Discord's client would.

Slash commands are looked up in what the bot registered (tree sync), so option values are
typed from the command's own schema: an attachment becomes an ATTACHMENT option whose value
is the same string id that keys ``resolved.attachments``; users, roles and channels are
resolved too. ``"group sub"`` paths build nested subcommand options.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import payloads
from .interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT, InteractionRecord
from .models import Application, Attachment, Channel, Guild, Member, Message, Role, User
from .permissions import channel_permissions

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2


class CommandError(LookupError):
    """The command or option does not exist, or the values do not fit its schema."""


def find_command(
    app: Application, guild_id: int | None, name: str, command_type: int = 1
) -> tuple[dict[str, Any], int | None]:
    """The registered command and the guild it is scoped to (None when global)."""
    if guild_id is not None:
        for cmd in app.guild_commands.get(guild_id, []):
            if cmd["name"] == name and cmd.get("type", 1) == command_type:
                return cmd, guild_id
    for cmd in app.global_commands:
        if cmd["name"] == name and cmd.get("type", 1) == command_type:
            return cmd, None
    raise CommandError(
        f"command {name!r} (type {command_type}) is not registered for "
        f"application {app.id}; did the bot sync its command tree?"
    )


def check_member_may_use(
    emu: DiscordEmulator, cmd: dict[str, Any], guild: Guild, channel: Channel, user_id: int
) -> None:
    """Discord's client hides commands whose ``default_member_permissions`` a member lacks.

    Turn off with ``DiscordEmulator.enforce_command_permissions = False`` to test a bot's
    own runtime checks (as if an admin had opened the command up in the server settings).
    """
    required = cmd.get("default_member_permissions")
    if required is None or not emu.enforce_command_permissions:
        return
    perms = channel_permissions(guild, channel, user_id, emu.state.parent_of(channel))
    if perms & int(required) != int(required):
        raise CommandError(
            f"user {user_id} lacks default_member_permissions {required} for {cmd['name']!r}"
        )


# https://discord.com/developers/docs/interactions/application-commands#installation-context
_INSTALL_TYPES = {"guild": 0, "user": 1}


def check_installation(emu: DiscordEmulator, cmd: dict[str, Any], installed_by: str) -> None:
    """A command offers itself only to the installations its ``integration_types`` name:
    a member who installed the app for themselves cannot run a
    guild-only command. Off with ``enforce_command_permissions``, like the check above."""
    offered = cmd["integration_types"]
    if emu.enforce_command_permissions and _INSTALL_TYPES[installed_by] not in offered:
        raise CommandError(f"{cmd['name']!r} is not offered to {installed_by} installs")


class _Resolver:
    """Collects ``resolved`` entries while option values are converted."""

    def __init__(self, emu: DiscordEmulator, guild: Guild, channel: Channel, invoker: int) -> None:
        self.emu, self.guild, self.channel, self.invoker = emu, guild, channel, invoker
        self.resolved: dict[str, dict[str, Any]] = {}

    def _put(self, kind: str, key: int, value: dict[str, Any]) -> str:
        self.resolved.setdefault(kind, {})[str(key)] = value
        return str(key)

    def attachment(self, value: Any) -> str:
        att = value if isinstance(value, Attachment) else self.emu.state.attachments.get(int(value))
        if att is None:
            raise CommandError(f"unknown attachment {value!r}")
        return self._put("attachments", att.id, att.to_payload(self.emu.state.cdn))

    def user(self, value: Any) -> str:
        user_id = _id_of(value)
        found = self.emu.state.users.get(user_id)
        if found is None:
            raise CommandError(f"unknown user {value!r}")
        self._put("users", user_id, payloads.user(found))
        member = self.guild.members.get(user_id)
        if member is not None:
            perms = channel_permissions(
                self.guild, self.channel, user_id, self.emu.state.parent_of(self.channel)
            )
            self._put(
                "members", user_id, payloads.member(member, with_user=False, permissions=perms)
            )
        return str(user_id)

    def role(self, value: Any) -> str:
        role = self.guild.roles.get(_id_of(value))
        if role is None:
            raise CommandError(f"unknown role {value!r}")
        return self._put("roles", role.id, payloads.role(role))

    def channel_option(self, value: Any) -> str:
        found = self.emu.state.channels.get(_id_of(value))
        if found is None:
            raise CommandError(f"unknown channel {value!r}")
        perms = channel_permissions(
            self.guild, found, self.invoker, self.emu.state.parent_of(found)
        )
        return self._put("channels", found.id, payloads.channel(found, permissions=perms))

    def mentionable(self, value: Any) -> str:
        if isinstance(value, Role) or _id_of(value) in self.guild.roles:
            return self.role(value)
        return self.user(value)

    def convert(self, option: dict[str, Any], value: Any) -> Any:
        kind = option["type"]
        choices = option.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise CommandError(f"{value!r} is not a choice of option {option['name']!r}")
        converters: dict[int, Callable[[Any], Any]] = {
            STRING: str,
            INTEGER: int,
            BOOLEAN: bool,
            NUMBER: float,
            ATTACHMENT: self.attachment,
            USER: self.user,
            ROLE: self.role,
            CHANNEL: self.channel_option,
            MENTIONABLE: self.mentionable,
        }
        if kind not in converters:
            raise CommandError(f"option type {kind} cannot take a value")
        return converters[kind](value)


def _id_of(value: Any) -> int:
    if isinstance(value, Member):
        return value.user.id
    if isinstance(value, User | Role | Channel | Attachment):
        return value.id
    return int(value)


def build_options(
    resolver: _Resolver, schema: list[dict[str, Any]], path: list[str], values: dict[str, Any]
) -> list[dict[str, Any]]:
    if path:
        head = next(
            (
                o
                for o in schema
                if o["name"] == path[0] and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
            ),
            None,
        )
        if head is None:
            raise CommandError(f"no subcommand or group named {path[0]!r}")
        inner = build_options(resolver, head.get("options", []), path[1:], values)
        return [{"name": head["name"], "type": head["type"], "options": inner}]
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        raise CommandError("this command needs a subcommand path, e.g. 'name group sub'")
    by_name = {o["name"]: o for o in schema}
    for name in values:
        if name not in by_name:
            raise CommandError(f"unknown option {name!r}; known: {sorted(by_name)}")
    missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
    if missing:
        raise CommandError(f"missing required options {missing}")
    return [
        {"name": o["name"], "type": o["type"], "value": resolver.convert(o, values[o["name"]])}
        for o in schema
        if o["name"] in values
    ]


def base_payload(
    emu: DiscordEmulator,
    *,
    app: Application,
    kind: int,
    guild: Guild,
    channel: Channel,
    user_id: int,
    data: dict[str, Any],
    name: str,
    locale: str | None = None,
    message: Message | None = None,
    command_type: int | None = None,
    installed_by: str = "guild",
) -> InteractionRecord:
    """A complete INTERACTION_CREATE body plus its record (not yet dispatched).

    ``installed_by="user"``: invoked through the member's own install of the app, which
    Discord names in ``authorizing_integration_owners`` (key "1", the user's id).
    """
    state = emu.state
    member = guild.members.get(user_id)
    if member is None:
        raise CommandError(f"user {user_id} is not a member of guild {guild.id}")
    parent = state.parent_of(channel)
    perms = channel_permissions(guild, channel, user_id, parent)
    bot_perms = channel_permissions(guild, channel, app.bot.id, parent, implicit_denial=False)
    ix_id = state.ids.next()
    token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
    payload: dict[str, Any] = {
        "id": str(ix_id),
        "application_id": str(app.id),
        "type": kind,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
        "channel_id": str(channel.id),
        "channel": payloads.channel(channel, permissions=perms),
        "member": payloads.member(member, permissions=perms),
        "token": token,
        "version": 1,
        "app_permissions": str(bot_perms),
        "locale": locale or state.users[user_id].locale,
        "guild_locale": guild.preferred_locale,
        "entitlements": [],
        "authorizing_integration_owners": (
            {"0": str(guild.id)} if installed_by == "guild" else {"1": str(user_id)}
        ),
        "context": 0,
        "attachment_size_limit": guild.upload_limit,
    }
    if message is not None:
        payload["message"] = payloads.message(state, message)
    return InteractionRecord(
        id=ix_id,
        token=token,
        type=kind,
        application_id=app.id,
        guild_id=guild.id,
        channel_id=channel.id,
        user_id=user_id,
        name=name,
        payload=payload,
        created_at=emu.clock.now(),
        command_type=command_type,
        target_message_id=message.id if message is not None else None,
    )


def slash_command(
    emu: DiscordEmulator,
    app: Application,
    guild: Guild,
    channel: Channel,
    user_id: int,
    name: str,
    options: dict[str, Any],
    extra_attachments: list[Attachment],
    locale: str | None,
    installed_by: str = "guild",
) -> InteractionRecord:
    parts = name.split()
    cmd, scope = find_command(app, guild.id, parts[0], 1)
    check_member_may_use(emu, cmd, guild, channel, user_id)
    check_installation(emu, cmd, installed_by)
    resolver = _Resolver(emu, guild, channel, user_id)
    data: dict[str, Any] = {
        "id": cmd["id"],
        "name": cmd["name"],
        "type": 1,
        "options": build_options(resolver, cmd.get("options", []), parts[1:], options),
    }
    for att in extra_attachments:
        resolver.attachment(att)
    if resolver.resolved:
        data["resolved"] = resolver.resolved
    if scope is not None:
        data["guild_id"] = str(scope)
    return base_payload(
        emu,
        app=app,
        kind=APPLICATION_COMMAND,
        guild=guild,
        channel=channel,
        user_id=user_id,
        data=data,
        name=cmd["name"],
        locale=locale,
        command_type=1,
        installed_by=installed_by,
    )


def context_menu(
    emu: DiscordEmulator,
    app: Application,
    guild: Guild,
    channel: Channel,
    user_id: int,
    name: str,
    *,
    message: Message | None = None,
    target_user: int | None = None,
    locale: str | None = None,
) -> InteractionRecord:
    """A message (type 3) or user (type 2) context-menu command."""
    command_type = 3 if message is not None else 2
    cmd, scope = find_command(app, guild.id, name, command_type)
    check_member_may_use(emu, cmd, guild, channel, user_id)
    resolver = _Resolver(emu, guild, channel, user_id)
    data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": command_type}
    if message is not None:
        data["target_id"] = str(message.id)
        data["resolved"] = {"messages": {str(message.id): payloads.message(emu.state, message)}}
    else:
        data["target_id"] = resolver.user(target_user)
        data["resolved"] = resolver.resolved
    if scope is not None:
        data["guild_id"] = str(scope)
    return base_payload(
        emu,
        app=app,
        kind=APPLICATION_COMMAND,
        guild=guild,
        channel=channel,
        user_id=user_id,
        data=data,
        name=cmd["name"],
        locale=locale,
        command_type=command_type,
    )


def find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for comp in components:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components", "accessory", "component"):
            child = comp.get(key)
            children = child if isinstance(child, list) else [child] if child else []
            found = find_component(children, custom_id)
            if found is not None:
                return found
    return None


def component(
    emu: DiscordEmulator,
    app: Application,
    guild: Guild,
    channel: Channel,
    user_id: int,
    message: Message,
    custom_id: str,
    values: list[str] | None,
) -> InteractionRecord:
    comp = find_component(message.components, custom_id)
    if comp is None:
        raise CommandError(f"message {message.id} has no component with custom_id {custom_id!r}")
    if comp.get("disabled"):
        raise CommandError(f"component {custom_id!r} is disabled")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
    if comp["type"] != 2:
        data["values"] = list(values or [])
    return base_payload(
        emu,
        app=app,
        kind=MESSAGE_COMPONENT,
        guild=guild,
        channel=channel,
        user_id=user_id,
        data=data,
        name=custom_id,
        message=message,
    )


def modal_components(modal: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Submitted components mirroring the modal's layout (rows or labels)."""

    def submitted(comp: dict[str, Any]) -> dict[str, Any]:
        value = values.get(comp.get("custom_id", ""), comp.get("value", ""))
        out: dict[str, Any] = {"type": comp["type"], "custom_id": comp.get("custom_id")}
        if comp["type"] == 4:
            out["value"] = str(value)
        else:
            out["values"] = list(value) if isinstance(value, list | tuple) else [value]
        return out

    result: list[dict[str, Any]] = []
    for top in modal.get("components", []):
        if top.get("type") == 1:
            result.append({"type": 1, "components": [submitted(c) for c in top["components"]]})
        elif top.get("type") == 18 and "component" in top:
            result.append({"type": 18, "component": submitted(top["component"])})
        elif top.get("custom_id"):
            result.append(submitted(top))
    return result


def modal_submit(
    emu: DiscordEmulator, app: Application, opener: InteractionRecord, values: dict[str, Any]
) -> InteractionRecord:
    if opener.modal is None:
        raise CommandError(f"interaction {opener.id} did not open a modal")
    state = emu.state
    guild = state.guild(opener.guild_id or 0)
    channel = state.channel(opener.channel_id)
    message = state.messages.get(opener.target_message_id or 0)
    data = {
        "custom_id": opener.modal["custom_id"],
        "components": modal_components(opener.modal, values),
    }
    return base_payload(
        emu,
        app=app,
        kind=MODAL_SUBMIT,
        guild=guild,
        channel=channel,
        user_id=opener.user_id,
        data=data,
        name=opener.modal["custom_id"],
        message=message,
    )
