"""What wire-level emulator tests send: the bot token of the `world` fixture's application,
and the User-Agent Discord requires of every HTTP client."""

from __future__ import annotations

TOKEN = "test-token"
USER_AGENT = {"User-Agent": "DiscordBot (https://example.invalid/tests, 1.0)"}
AUTH = {"Authorization": f"Bot {TOKEN}", **USER_AGENT}
