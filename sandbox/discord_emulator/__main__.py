"""Run the emulator as its own process (demo, benchmarks): ``python -m sandbox.discord_emulator``.

It seeds one application, one guild with channels and members, prints one JSON line with
the ids and URLs (also written to ``--info-file``), then serves until SIGINT/SIGTERM.
Drive it over HTTP with the control API under ``/_control/`` (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from .emulator import DiscordEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.discord_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default="test-token", help="the bot token to accept")
    parser.add_argument("--app-name", default="Kling")
    parser.add_argument("--guild-name", default="Demo Guild")
    parser.add_argument("--channel", action="append", help="text channel (repeatable)")
    parser.add_argument("--member", action="append", help="member username (repeatable)")
    parser.add_argument("--premium-tier", type=int, default=0, choices=[0, 1, 2, 3])
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--info-file", type=Path, help="also write the JSON info here")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    emu = DiscordEmulator(args.host, args.port, rate_limits=not args.no_rate_limits)
    await emu.start()
    app = emu.create_application(args.app_name, bot_token=args.token)
    guild = emu.create_guild(args.guild_name, premium_tier=args.premium_tier)
    channels = [emu.create_text_channel(guild.id, n) for n in args.channel or ["general"]]
    members = [emu.create_member(guild.id, n) for n in args.member or ["alice"]]
    info: dict[str, Any] = {
        "api_base": emu.api_base,
        "gateway_url": emu.gateway_url,
        "control": f"{emu.base_url}/_control",
        "application_id": str(app.id),
        "bot_user_id": str(app.bot.id),
        "guild_id": str(guild.id),
        "channels": {c.name: str(c.id) for c in channels},
        "members": {m.user.username: str(m.user.id) for m in members},
    }
    line = json.dumps(info)
    if args.info_file is not None:
        args.info_file.write_text(line + "\n")
    print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(_parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
