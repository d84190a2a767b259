"""`check-config --online`: can the bot reach Discord, EvoLink, its own public URL and its
media bucket?"""

from __future__ import annotations

import asyncio

import aiohttp
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from bot.discord_routing import bot_headers
from bot.evolink import EvolinkClient, EvolinkError
from bot.media.s3store import CLIENT_CONFIG
from bot.settings import MediaStoreKind, Settings

TIMEOUT = aiohttp.ClientTimeout(total=10)


class Check(BaseModel):
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


async def _discord(session: aiohttp.ClientSession, settings: Settings) -> Check:
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    try:
        async with session.get(
            f"{settings.discord_api_base}/users/@me", headers=bot_headers(token)
        ) as response:
            if response.status == 401:
                return Check(name="Discord", ok=False, detail="DISCORD_TOKEN was refused (401)")
            if response.status != 200:
                return Check(name="Discord", ok=False, detail=f"HTTP {response.status}")
            user = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Check(name="Discord", ok=False, detail=f"unreachable ({type(error).__name__})")
    return Check(name="Discord", ok=True, detail=f"logged in as {user.get('username', '?')}")


async def _evolink(session: aiohttp.ClientSession, settings: Settings) -> Check:
    client = EvolinkClient(
        session, base_url=settings.evolink_base_url, api_key=settings.evolink_api_key or "",
        get_attempts=1,
    )
    try:
        credits = await client.get_credits()
    except EvolinkError as error:
        return Check(name="EvoLink", ok=False, detail=str(error))
    remaining = credits.remaining_credits
    detail = "key accepted" + (f", {remaining:g} credits left" if remaining is not None else "")
    return Check(name="EvoLink", ok=True, detail=detail)


async def _public_url(session: aiohttp.ClientSession, settings: Settings) -> Check:
    if settings.public_base_url is None:  # only allowed with S3 media (missing_for_run)
        return Check(name="PUBLIC_BASE_URL", ok=True,
                     detail="unset: no public web server (S3 media, polling only)")
    url = f"{settings.public_base_url}/healthz"
    try:
        async with session.get(url) as response:
            body = await response.json(content_type=None)
            if response.status == 200 and body.get("status") == "ok":
                return Check(name="PUBLIC_BASE_URL", ok=True, detail=f"{url} answers healthy")
            return Check(name="PUBLIC_BASE_URL", ok=False, detail=f"{url} answered "
                         f"HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return Check(
            name="PUBLIC_BASE_URL", ok=False,
            detail=f"{url} is not the bot's health page ({type(error).__name__}); is the bot "
            "running and the proxy forwarding to WEB_PORT?",
        )


async def _bucket(settings: Settings) -> Check:
    """The bucket exists and these credentials may use it (HEAD bucket)."""
    async with get_session().create_client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
        config=CLIENT_CONFIG,
    ) as s3:
        try:
            await s3.head_bucket(Bucket=settings.s3_bucket or "")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            return Check(name="S3_BUCKET", ok=False, detail=f"{settings.s3_bucket!r}: {code}")
        except BotoCoreError as error:  # no credentials, endpoint unreachable
            return Check(name="S3_BUCKET", ok=False, detail=str(error))
    return Check(name="S3_BUCKET", ok=True, detail=f"{settings.s3_bucket!r} is reachable")


async def run_checks(settings: Settings) -> list[Check]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        checks = [
            _discord(session, settings), _evolink(session, settings),
            _public_url(session, settings),
        ]
        if settings.media_store is MediaStoreKind.S3:
            checks.append(_bucket(settings))
        return list(await asyncio.gather(*checks))
