"""A delivery resumed at start waits for the gateway: only then is the server's upload limit
(its boost tier) known, so a boosted server's result is attached, not linked. A server on
another process's shard is never in the cache: its limit is asked over REST."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord

from bot.i18n import Catalogs
from bot.jobs.notifier import ArchivedResult
from cogs.notifier import DiscordNotifier
from storage.models import MediaObject, MediaRole
from tests.unit.test_public_texts import job_with

MIB = 1024 * 1024


class NotReadyBot:
    """A client whose gateway has not filled the guild cache yet."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.guild: Any = None
        self.posts: list[dict[str, Any]] = []
        self.catalogs = Catalogs()

    async def wait_until_ready(self) -> None:
        await self.ready.wait()

    def get_guild(self, guild_id: int) -> Any:
        return self.guild

    def get_channel(self, channel_id: int) -> Any:
        return None

    def get_partial_messageable(self, channel_id: int, *, guild_id: int | None = None) -> Any:
        async def send(content: str, **fields: Any) -> Any:
            self.posts.append({"content": content, "attached": "file" in fields})
            return SimpleNamespace(id=len(self.posts))

        return SimpleNamespace(send=send)


def boosted_size_result(tmp_path: Path) -> ArchivedResult:
    """A result over the unboosted 10 MiB, under a boosted server's 50."""
    video = tmp_path / "result.mp4"
    video.write_bytes(b"\0" * (15 * MIB))
    media = MediaObject(
        id=1, token="t", job_id=42, role=MediaRole.RESULT, position=0,
        relative_path="results/t.mp4", filename="kling-edit-42.mp4",
        content_type="video/mp4", size_bytes=15 * MIB, sha256="0" * 64, created_at=0.0,
        expires_at=None, deleted_at=None,
    )

    @contextlib.asynccontextmanager
    async def local_file() -> AsyncIterator[Path]:
        yield video

    return ArchivedResult(
        media=media, local_file=local_file, public_url="https://x/m/t", expires_at=None
    )


async def test_a_resumed_delivery_waits_for_the_guild_cache_and_attaches(
    tmp_path: Path,
) -> None:
    bot = NotReadyBot()
    notifier = DiscordNotifier(bot, edit_interval=0)  # type: ignore[arg-type]
    result = boosted_size_result(tmp_path)

    delivery = asyncio.create_task(notifier.result_ready(job_with("snow"), result))
    await asyncio.sleep(0)  # the delivery runs up to its first wait
    assert bot.posts == []  # nothing posted on a guess of the upload limit
    bot.guild = SimpleNamespace(filesize_limit=50 * MIB)  # the gateway's GUILD_CREATE
    bot.ready.set()
    await delivery

    assert [post["attached"] for post in bot.posts] == [True]
    await notifier.close()


class OtherShardsBot(NotReadyBot):
    """A ready process delivering for a server on another process's shard: not cached."""

    def __init__(self, fetched: Any) -> None:
        super().__init__()
        self.ready.set()
        self.fetched = fetched
        self.fetches: list[int] = []

    async def fetch_guild(self, guild_id: int) -> Any:
        self.fetches.append(guild_id)
        if self.fetched is None:
            raise discord.NotFound(SimpleNamespace(status=404, reason="Not Found"), "gone")
        return self.fetched


async def test_a_server_outside_the_cache_is_asked_for_its_upload_limit(tmp_path: Path) -> None:
    bot = OtherShardsBot(SimpleNamespace(filesize_limit=50 * MIB))
    notifier = DiscordNotifier(bot, edit_interval=0)  # type: ignore[arg-type]
    job = job_with("snow")

    await notifier.result_ready(job, boosted_size_result(tmp_path))

    assert bot.fetches == [job.guild_id]
    assert [post["attached"] for post in bot.posts] == [True]
    await notifier.close()


async def test_when_the_server_cannot_be_asked_a_result_over_the_default_is_linked(
    tmp_path: Path,
) -> None:
    bot = OtherShardsBot(None)
    notifier = DiscordNotifier(bot, edit_interval=0)  # type: ignore[arg-type]

    await notifier.result_ready(job_with("snow"), boosted_size_result(tmp_path))

    assert [post["attached"] for post in bot.posts] == [False]
    await notifier.close()
