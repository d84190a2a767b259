"""What wire-level emulator tests send: the bot token of the `world` fixture's application."""

from __future__ import annotations

TOKEN = "test-token"
AUTH = {"Authorization": f"Bot {TOKEN}"}
