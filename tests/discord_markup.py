"""What Discord would render as something other than plain text, for tests of public texts.

Formats from discord.com/developers/docs/reference#message-formatting-formats; links as the
client autolinks them (a scheme's ``://``, and invite hosts even without a scheme).
"""

from __future__ import annotations

import re

MARKUP = re.compile(
    r"<@[!&]?\d+>|<#\d+>|</[\w -]+:\d+>|<a?:\w+:\d+>|<t:-?\d+(?::[tTdDfFR])?>|<id:\w+>"
    r"|[a-z][a-z0-9+.-]*://|discord(?:app)?\.com/invite|discord\.gg/|@everyone|@here",
    re.IGNORECASE,
)
# Bidi controls and C0/C1 controls other than newline.
HIDDEN = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\x00-\x09\x0b-\x1f\x7f-\x9f]")

HOSTILE_PROMPT = (
    "snow \u202eevil\u202c \u2066iso\u2069 \u200fmark\u061c\x07bell\x1b[31m\x85 "
    "<#123456789012345678> </edit:123456789012345678> <@&123456789012345678> "
    "<@123456789012345678> <@!123456789012345678> @everyone @here <t:1700000000:R> "
    "<:party:123456789012345678> <id:customize> join discord.gg/abc or "
    "https://discord.com/invite/xyz DISCORDAPP.COM/invite/q <https://evil.example/x> "
    "[click](https://evil.example/y)"
)


def rendered_markup(text: str) -> list[str]:
    """Every piece of `text` Discord would render as a mention, link or invite."""
    return MARKUP.findall(text)
