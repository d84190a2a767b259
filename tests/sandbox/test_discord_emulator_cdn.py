"""The attachment CDN answers only signed, unexpired URLs, as Discord's does."""

from __future__ import annotations

import aiohttp
from yarl import URL

from sandbox.discord_emulator import DiscordEmulator


async def _status(http: aiohttp.ClientSession, url: str | URL) -> int:
    async with http.get(url) as resp:
        await resp.read()
        return resp.status


async def test_only_a_signed_url_downloads(
    emu: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    att = emu.add_attachment("clip.mp4", b"clip bytes")
    signed = URL(att.signed_url(emu.state.cdn))
    assert set(signed.query) >= {"ex", "is", "hm"}

    assert await _status(http, signed) == 200
    assert await _status(http, att.url) == 404  # the bare path, as a stored link would be
    tampered = signed.update_query(ex=format(int(signed.query["ex"], 16) + 3600, "x"))
    assert await _status(http, tampered) == 404  # a later expiry without a new signature


async def test_a_url_expires_after_its_lifetime_and_a_fresh_one_works(
    emu: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    att = emu.add_attachment("clip.mp4", b"clip bytes")
    issued = att.signed_url(emu.state.cdn)

    emu.clock.advance(emu.state.cdn.lifetime_s + 1)

    assert await _status(http, issued) == 404
    assert await _status(http, att.signed_url(emu.state.cdn)) == 200
