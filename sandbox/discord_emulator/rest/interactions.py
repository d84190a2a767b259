"""Interaction callback and the interaction webhook (original response and followups)."""

from __future__ import annotations

from aiohttp import web

from .. import errors, messages, payloads
from .. import interactions as rules
from ..interactions import InteractionRecord
from .common import (
    RECEIVED,
    RouteTable,
    emulator,
    flag,
    json_response,
    message_body,
    no_content,
    snowflake,
)

table = RouteTable()


@table.route("POST", "/interactions/{interaction_id}/{token}/callback")
async def interaction_callback(request: web.Request) -> web.Response:
    emu = emulator(request)
    ix = emu.state.interactions.get(snowflake(request, "interaction_id"))
    if ix is None or ix.token != request.match_info["token"]:
        raise errors.unknown_interaction()
    out = await message_body(request)
    answer = rules.callback(emu, ix, out, request[RECEIVED])
    if flag(request, "with_response"):
        return json_response(answer)
    return no_content()


def _webhook(request: web.Request) -> InteractionRecord:
    emu = emulator(request)
    try:
        return rules.webhook_interaction(
            emu, snowflake(request, "application_id"), request.match_info["token"]
        )
    except errors.DiscordError as exc:
        ix = emu.state.interactions_by_token.get(request.match_info["token"])
        if ix is not None:
            ix.webhook_errors.append((request.method, request.path, exc.status, exc.code))
        raise


@table.route("POST", "/webhooks/{application_id}/{token}")
async def followup(request: web.Request) -> web.Response:
    emu = emulator(request)
    ix = _webhook(request)
    out = await message_body(request)
    message = rules.followup(emu, ix, out)
    if flag(request, "wait"):
        return json_response(payloads.message(emu.state, message))
    return no_content()


@table.route("GET", "/webhooks/{application_id}/{token}/messages/{message_id}")
async def get_webhook_message(request: web.Request) -> web.Response:
    emu = emulator(request)
    ix = _webhook(request)
    message = rules.webhook_message(ix, request.match_info["message_id"])
    return json_response(payloads.message(emu.state, message))


@table.route("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}")
async def edit_webhook_message(request: web.Request) -> web.Response:
    emu = emulator(request)
    ix = _webhook(request)
    message = rules.webhook_message(ix, request.match_info["message_id"])
    out = await message_body(request)
    return json_response(payloads.message(emu.state, rules.edit_message(emu, ix, message, out)))


@table.route("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}")
async def delete_webhook_message(request: web.Request) -> web.Response:
    emu = emulator(request)
    ix = _webhook(request)
    message = rules.webhook_message(ix, request.match_info["message_id"])
    messages.delete(emu, message)
    return no_content()
