"""Command line: python -m bot run | demo | migrate | migrate-sqlite-to-postgres |
sync-commands | check-config."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.logging_setup import configure_logging, secrets_of
from bot.media.prober import stop_helper_processes
from bot.settings import MEDIA_NEEDS, Settings, describe_validation_error
from storage.database import Database, MigrationError


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print("Invalid configuration:\n" + describe_validation_error(error), file=sys.stderr)
        raise SystemExit(2) from None


async def _migrate(settings: Settings) -> int:
    try:
        db = await Database.open(
            settings.database, migrate=False, schema=settings.database_schema
        )
    except (OSError, SQLAlchemyError) as error:
        print(f"Cannot open the database: {error}", file=sys.stderr)
        return 1
    try:
        applied = await db.migrate()
        version = await db.schema_version()
    except MigrationError as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        await db.close()
    if applied:
        print(f"Applied {', '.join(applied)}; schema revision is now {version}.")
    else:
        print(f"Schema is up to date (revision {version}).")
    return 0


async def _copy_to_postgres(settings: Settings, source: Path) -> int:
    from storage.sqlite_to_postgres import CopyRefused, copy_sqlite_file

    if settings.database_url is None:
        print("Set DATABASE_URL to the empty PostgreSQL database to copy into.", file=sys.stderr)
        return 2
    try:
        copied = await copy_sqlite_file(source, settings.database_url.get_secret_value())
    except (CopyRefused, MigrationError) as error:
        print(f"Nothing copied: {error}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as error:
        print(f"Copy failed, nothing was written to PostgreSQL: {error}", file=sys.stderr)
        return 1
    print(f"Copied {sum(copied.values())} rows from {source} to PostgreSQL:")
    for table, rows in copied.items():
        print(f"  {table}: {rows}")
    return 0


def _check_config(settings: Settings, online: bool) -> int:
    missing = settings.missing_for_run()
    if missing:
        print("Missing settings needed to run: " + ", ".join(missing), file=sys.stderr)
        if settings.missing_for_media():
            print(MEDIA_NEEDS, file=sys.stderr)
        return 2
    if refusal := settings.refused_for_processes():
        print(refusal, file=sys.stderr)
        return 2
    offered = ", ".join(spec.name for spec in settings.model_specs)
    print(f"Configuration is valid (model {settings.evolink_model.value}; offered: {offered}).")
    for note in settings.deployment_notes():
        print(note)
    if not online:
        return 0
    from bot.preflight import run_checks

    checks = asyncio.run(run_checks(settings))
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot with settings from the environment and .env")
    demo = commands.add_parser("demo", help="run the offline end-to-end demo")
    demo.add_argument(
        "scenario", nargs="?", choices=("happy", "failure", "quota", "restart"), default=None,
        help="what to show (default: $DEMO_SCENARIO, else happy)",
    )
    commands.add_parser("migrate", help="apply pending database migrations")
    copy = commands.add_parser(
        "migrate-sqlite-to-postgres",
        help="copy this bot's SQLite database into the empty PostgreSQL one at DATABASE_URL",
    )
    copy.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="PATH",
        help="the SQLite file, e.g. data/kling.sqlite3 (stop the bot first)",
    )
    check = commands.add_parser("check-config", help="validate the settings")
    check.add_argument(
        "--online", action="store_true",
        help="also reach Discord, EvoLink, PUBLIC_BASE_URL/healthz and the S3 bucket",
    )
    sync = commands.add_parser("sync-commands", help="publish the slash commands to Discord")
    sync.add_argument("--guild", type=int, default=None, help="sync to one guild (instant)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        # Imported here: the demo is a sandbox tool, not part of the bot's runtime.
        from sandbox.demo import main as demo_main

        return demo_main(args.scenario)
    settings = _load_settings()
    configure_logging(
        settings.log_level, settings.log_json,
        secrets_of(settings.discord_token, settings.evolink_api_key, settings.database_password),
    )
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "migrate-sqlite-to-postgres":
        return asyncio.run(_copy_to_postgres(settings, args.source))
    if args.command == "check-config":
        return _check_config(settings, args.online)
    if args.command == "run":
        missing = settings.missing_for_run()
        if missing:
            print(f"Cannot start: set {', '.join(missing)} (see .env.example).", file=sys.stderr)
            return 2
        if refusal := settings.refused_for_processes():
            print(f"Cannot start: {refusal}", file=sys.stderr)
            return 2
        try:
            return asyncio.run(_run(settings))
        finally:
            stop_helper_processes()
    if args.command == "sync-commands":
        return asyncio.run(_sync_commands(settings, args.guild))
    return 2


async def _run(settings: Settings) -> int:
    from bot.client import KlingBot
    from bot.discord_routing import route_discord

    assert settings.discord_token is not None
    await route_discord(settings)
    # SIGTERM (docker stop, systemd) and Ctrl-C close the bot cleanly: new edits are
    # refused, running writes finish, unfinished jobs resume on the next start.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with KlingBot(settings) as bot:
        runner = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await bot.close()
        stopping.cancel()
        if runner.done() and not runner.cancelled():
            runner.result()  # a login or gateway failure is an error exit
        else:
            await asyncio.gather(runner, return_exceptions=True)
    return 0


async def _sync_commands(settings: Settings, guild_id: int | None) -> int:
    import discord

    from bot.client import KlingBot
    from bot.discord_routing import route_discord

    if settings.discord_token is None:
        print("Cannot sync: set DISCORD_TOKEN.", file=sys.stderr)
        return 2
    await route_discord(settings)
    async with KlingBot(settings, sync_only=True) as bot:
        await bot.login(settings.discord_token.get_secret_value())
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
    where = f"guild {guild_id}" if guild_id else "all servers (may take up to an hour to show)"
    print(f"Synced {len(synced)} commands to {where}: {', '.join(c.name for c in synced)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
