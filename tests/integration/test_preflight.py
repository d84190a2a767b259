from __future__ import annotations

from pathlib import Path

from bot.preflight import run_checks
from sandbox.discord_emulator import DiscordEmulator
from sandbox.discord_emulator.testing import build_world
from tests.integration.engine_harness import running_harness
from tests.s3_endpoint import S3Bucket


async def test_online_check_reaches_discord_evolink_and_the_public_health_page(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path) as harness, DiscordEmulator() as emu:
        build_world(emu, token="preflight-token")
        await harness.start()
        settings = harness.settings(
            DISCORD_API_BASE=emu.api_base, DISCORD_TOKEN="preflight-token"
        )
        checks = {check.name: check for check in await run_checks(settings)}
        assert all(check.ok for check in checks.values()), checks
        assert checks["Discord"].detail.startswith("logged in as")
        assert "credits left" in checks["EvoLink"].detail


async def test_online_check_names_each_problem(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as harness, DiscordEmulator() as emu:
        build_world(emu, token="preflight-token")
        settings = harness.settings(
            DISCORD_API_BASE=emu.api_base, DISCORD_TOKEN="wrong-token",
            EVOLINK_API_KEY="sk-evo-wrong",
        )  # and the bot is not running, so its health page is not served
        checks = {check.name: check for check in await run_checks(settings)}
        assert not any(check.ok for check in checks.values())
        assert "DISCORD_TOKEN was refused" in checks["Discord"].detail
        assert "401" in checks["EvoLink"].detail
        assert "is the bot running" in checks["PUBLIC_BASE_URL"].detail


async def test_online_check_with_s3_media_reaches_the_bucket_and_needs_no_public_server(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    async with running_harness(tmp_path) as harness, DiscordEmulator() as emu:
        build_world(emu, token="preflight-token")
        settings = harness.settings(
            DISCORD_API_BASE=emu.api_base, DISCORD_TOKEN="preflight-token", PUBLIC_BASE_URL="",
            **s3_bucket.settings(),
        )  # the bot is not running: with S3 media and polling nothing needs to reach it
        checks = {check.name: check for check in await run_checks(settings)}
        assert all(check.ok for check in checks.values()), checks
        assert "no public web server" in checks["PUBLIC_BASE_URL"].detail

        wrong = settings.model_copy(update={"s3_bucket": "no-such-bucket"})
        checks = {check.name: check for check in await run_checks(wrong)}
        assert not checks["S3_BUCKET"].ok and "no-such-bucket" in checks["S3_BUCKET"].detail
