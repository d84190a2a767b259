"""Login and setup routes: users, application info, gateway discovery, command registration."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .. import errors, payloads
from ..models import Application
from .common import RouteTable, bot_application, emulator, json_body, json_response, snowflake

table = RouteTable()
_NAME = re.compile(r"^[-_'\w]{1,32}$")
# https://discord.com/developers/docs/reference#locales: the only keys a localization
# dictionary may have ("Localization" in application-commands: "Keys in available locales").
DISCORD_LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu",
    "nl", "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru",
    "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
})


@table.route("GET", "/users/@me")
async def current_user(request: web.Request) -> web.Response:
    app = bot_application(request)
    return json_response(
        {
            **payloads.user(app.bot),
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "locale": "en-US",
        }
    )


@table.route("GET", "/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    found = emulator(request).state.users.get(snowflake(request, "user_id"))
    if found is None:
        raise errors.unknown_user()
    return json_response(payloads.user(found))


def _application(app: Application) -> dict[str, Any]:
    return {
        "id": str(app.id),
        "name": app.name,
        "icon": None,
        "description": app.description,
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": payloads.user(app.owner),
        "team": None,
        "verify_key": "0" * 64,
        "flags": 0,
        "bot": payloads.user(app.bot),
        "interactions_endpoint_url": None,
        "approximate_guild_count": 0,
        "redirect_uris": [],
        "tags": [],
    }


@table.route("GET", "/oauth2/applications/@me")
async def oauth_application(request: web.Request) -> web.Response:
    return json_response(_application(bot_application(request)))


@table.route("GET", "/applications/@me")
async def current_application(request: web.Request) -> web.Response:
    return json_response(_application(bot_application(request)))


@table.route("GET", "/gateway")
async def gateway(request: web.Request) -> web.Response:
    return json_response({"url": emulator(request).gateway_url})


@table.route("GET", "/gateway/bot")
async def gateway_bot(request: web.Request) -> web.Response:
    bot_application(request)
    return json_response(
        {
            "url": emulator(request).gateway_url,
            # Discord recommends about one shard per 1,000 guilds.
            "shards": _recommended_shards(request),
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }
    )


def _recommended_shards(request: web.Request) -> int:
    emu, bot = emulator(request), bot_application(request).bot
    guilds = sum(1 for g in emu.state.guilds.values() if bot.id in g.members)
    return max(1, -(-guilds // emu.guilds_per_recommended_shard))


# -- application commands -------------------------------------------------------------------


def _own_app(request: web.Request) -> Application:
    app = bot_application(request)
    if snowflake(request, "application_id") != app.id:
        raise errors.DiscordError(403, 50001, "Missing Access")
    return app


def _guild_scope(request: web.Request, app: Application) -> int:
    guild_id = snowflake(request, "guild_id")
    guild = emulator(request).state.guild(guild_id)
    if app.bot.id not in guild.members:
        raise errors.missing_access()
    return guild_id


def _validate(cmd: dict[str, Any], index: int) -> None:
    """Rules of https://discord.com/developers/docs/interactions/application-commands that
    Discord's OpenAPI description (checked on every body) cannot express: the naming regex
    and lowercase names of chat-input commands and their options, and "required options
    must be listed before optional options" at every level."""
    kind = cmd.get("type", 1)
    name = cmd.get("name")
    if not isinstance(name, str) or not (_NAME.match(name) if kind == 1 else 0 < len(name) <= 32):
        raise errors.invalid_form(
            f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    if kind == 1 and name != name.lower():
        raise errors.invalid_form(
            f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name must be lowercase"
        )
    description = cmd.get("description", "")
    if kind == 1 and not (isinstance(description, str) and 1 <= len(description) <= 100):
        raise errors.invalid_form(
            f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    _validate_localizations(cmd, f"{index}", chat_input=kind == 1)
    if kind == 1:
        _validate_options(cmd.get("options") or [], f"{index}.options")


def _validate_localizations(item: dict[str, Any], where: str, *, chat_input: bool) -> None:
    """Application-commands docs, "Localization": keys are available locales, and each
    localized name or description "must fall within the same constraints" as the field
    (names by the naming regex and lowercase for chat-input commands and options,
    descriptions 1–100 characters; choice names 1–100)."""
    for field in ("name_localizations", "description_localizations"):
        for locale, text in (item.get(field) or {}).items():
            at = f"{where}.{field}.{locale}"
            if locale not in DISCORD_LOCALES:
                raise errors.invalid_form(at, "INVALID_LOCALE", f"Invalid locale {locale!r}")
            if field == "description_localizations" or not chat_input:
                if not (isinstance(text, str) and 1 <= len(text) <= 100):
                    raise errors.invalid_form(
                        at, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
            elif not (isinstance(text, str) and _NAME.match(text) and text == text.lower()):
                raise errors.invalid_form(
                    at, "APPLICATION_COMMAND_INVALID_NAME", "Localized name is invalid"
                )


_SUBCOMMAND_TYPES = (1, 2)


def _validate_options(options: list[dict[str, Any]], prefix: str) -> None:
    optional_seen = False
    for position, option in enumerate(options):
        where = f"{prefix}.{position}"
        name = option.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
            raise errors.invalid_form(
                f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Option name is invalid"
            )
        _validate_localizations(option, where, chat_input=True)
        for number, choice in enumerate(option.get("choices") or []):
            _validate_localizations(choice, f"{where}.choices.{number}", chat_input=False)
        if option.get("type") in _SUBCOMMAND_TYPES:
            _validate_options(option.get("options") or [], f"{where}.options")
            continue
        if option.get("required"):
            if optional_seen:
                raise errors.invalid_form(
                    f"{where}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True


def _store(
    request: web.Request,
    app: Application,
    existing: list[dict[str, Any]],
    cmd: dict[str, Any],
    guild_id: int | None,
) -> dict[str, Any]:
    kind = cmd.get("type", 1)
    old = next((c for c in existing if c["name"] == cmd["name"] and c["type"] == kind), None)
    ids = emulator(request).state.ids
    stored = {
        "id": old["id"] if old else str(ids.next()),
        "application_id": str(app.id),
        "version": str(ids.next()),
        "type": kind,
        "name": cmd["name"],
        "description": cmd.get("description", ""),
        "options": cmd.get("options", []),
        "default_member_permissions": cmd.get("default_member_permissions"),
        "dm_permission": cmd.get("dm_permission", True),
        "nsfw": cmd.get("nsfw", False),
        "contexts": cmd.get("contexts"),
        # Omitted, a command follows the app's installation settings (application-commands
        # docs); the reading hardest on a bot is an app installable by users too.
        "integration_types": cmd.get("integration_types") or [0, 1],
        "name_localizations": cmd.get("name_localizations"),
        "description_localizations": cmd.get("description_localizations"),
    }
    if guild_id is not None:
        stored["guild_id"] = str(guild_id)
    return stored


def _replace(
    request: web.Request,
    app: Application,
    body: Any,
    existing: list[dict[str, Any]],
    guild_id: int | None,
) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise errors.invalid_form("_root", "BASE_TYPE_ARRAY", "Must be an array.")
    if len(body) > 100:
        raise errors.DiscordError(400, 30032, "Maximum number of application commands reached")
    seen: set[tuple[str, int]] = set()
    for index, cmd in enumerate(body):
        _validate(cmd, index)
        key = (cmd["name"], cmd.get("type", 1))
        if key in seen:
            raise errors.invalid_form(
                f"{index}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        seen.add(key)
    return [_store(request, app, existing, cmd, guild_id) for cmd in body]


@table.route("GET", "/applications/{application_id}/commands")
async def get_global_commands(request: web.Request) -> web.Response:
    return json_response(_own_app(request).global_commands)


@table.route("PUT", "/applications/{application_id}/commands")
async def put_global_commands(request: web.Request) -> web.Response:
    app = _own_app(request)
    app.global_commands = _replace(
        request, app, await json_body(request), app.global_commands, None
    )
    return json_response(app.global_commands)


@table.route("POST", "/applications/{application_id}/commands")
async def upsert_global_command(request: web.Request) -> web.Response:
    app = _own_app(request)
    cmd = await json_body(request)
    _validate(cmd, 0)
    stored = _store(request, app, app.global_commands, cmd, None)
    app.global_commands = [c for c in app.global_commands if c["id"] != stored["id"]] + [stored]
    return json_response(stored, 201)


@table.route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
async def get_guild_commands(request: web.Request) -> web.Response:
    app = _own_app(request)
    return json_response(app.guild_commands.get(_guild_scope(request, app), []))


@table.route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
async def put_guild_commands(request: web.Request) -> web.Response:
    app = _own_app(request)
    guild_id = _guild_scope(request, app)
    existing = app.guild_commands.get(guild_id, [])
    app.guild_commands[guild_id] = _replace(
        request, app, await json_body(request), existing, guild_id
    )
    return json_response(app.guild_commands[guild_id])
