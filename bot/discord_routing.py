"""Point discord.py at the configured Discord (the real one, or the local emulator).

discord.py has no setting for its hosts: the REST base and the default gateway are class
attributes, so they are set once, before the client connects.
"""

from __future__ import annotations

import logging
import sys

import aiohttp
import discord.gateway
import discord.http
import yarl

from bot.settings import Settings

log = logging.getLogger(__name__)

# Discord requires `DiscordBot ($url, $versionNumber)` of every HTTP client (Reference →
# User Agent) and may block others: the bot's own calls beside discord.py's send the one
# discord.py sends.
DISCORD_USER_AGENT = (
    f"DiscordBot (https://github.com/Rapptz/discord.py {discord.__version__}) "
    f"Python/{sys.version_info[0]}.{sys.version_info[1]} aiohttp/{aiohttp.__version__}"
)


def bot_headers(token: str) -> dict[str, str]:
    """Headers of a REST call made with the bot's token outside discord.py."""
    return {"Authorization": f"Bot {token}", "User-Agent": DISCORD_USER_AGENT}


async def discover_gateway(api_base: str, token: str) -> str:
    """Ask a non-Discord API base where its gateway is (`GET /gateway/bot`)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api_base}/gateway/bot", headers=bot_headers(token)) as response:
            response.raise_for_status()
            body = await response.json(content_type=None)
    return str(body["url"])


async def route_discord(settings: Settings) -> None:
    if settings.uses_real_discord and settings.discord_gateway_url is None:
        return
    discord.http.Route.BASE = settings.discord_api_base
    gateway = settings.discord_gateway_url
    if gateway is None:
        token = settings.discord_token.get_secret_value() if settings.discord_token else ""
        gateway = await discover_gateway(settings.discord_api_base, token)
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    log.info("discord routed api=%s gateway=%s", settings.discord_api_base, gateway)
