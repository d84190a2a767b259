"""Discord's rate limits at the wire: separate create/edit buckets, the global per-bot limit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp

from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.ratelimit import DEFAULT_RULES, GLOBAL_RULE
from sandbox.discord_emulator.testing import World
from tests.sandbox.wire import AUTH


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with http.request(method, url, json=body, headers=AUTH) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_message_creates_and_edits_have_separate_buckets(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    posted = [await _call(http, "POST", url, {"content": f"post {n}"}) for n in range(5)]
    assert [status for status, _, _ in posted] == [200] * 5
    status, limited, _ = await _call(http, "POST", url, {"content": "one too many"})
    assert status == 429 and limited["global"] is False

    first = posted[0][1]["id"]
    status, _, headers = await _call(http, "PATCH", f"{url}/{first}", {"content": "edited"})

    assert status == 200  # the exhausted create bucket does not hold back an edit
    assert headers["X-RateLimit-Bucket"] != posted[0][2]["X-RateLimit-Bucket"]


async def test_more_than_fifty_requests_a_second_meet_the_global_limit(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    # Discord's 50 per second, with a window long enough that a slow machine cannot
    # spread the 60 requests over two windows.
    emu.ratelimiter.configure(DEFAULT_RULES, replace(GLOBAL_RULE, per=60.0))
    url = f"{emu.api_base}/users/@me"
    answers = await asyncio.gather(*(_call(http, "GET", url) for _ in range(60)))

    limited = [(body, headers) for status, body, headers in answers if status == 429]
    assert len(limited) == 10
    for body, headers in limited:
        assert body["global"] is True and headers["X-RateLimit-Scope"] == "global"
        assert headers["Via"] and body["retry_after"] > 0
    # Interaction webhooks are not bound to the global limit: this one is refused for its
    # unknown token, not rate limited.
    status, body, _ = await _call(
        http, "POST", f"{emu.api_base}/webhooks/{world.app.id}/no-such-token", {"content": "x"}
    )
    assert status != 429 and body["code"] != 0


async def test_a_proxy_in_front_refuses_a_large_upload_with_a_bare_413(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    emu.proxy_body_limit = 100
    form = aiohttp.FormData()
    form.add_field("payload_json", '{"content": "clip"}', content_type="application/json")
    form.add_field("files[0]", b"x" * 101, filename="clip.mp4", content_type="video/mp4")
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"

    async with http.post(url, data=form, headers=AUTH) as resp:
        assert resp.status == 413 and resp.content_type == "text/html"  # no Discord code
    status, _, _ = await _call(http, "POST", url, {"content": "text still goes through"})
    assert status == 200
