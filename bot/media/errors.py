"""The one exception media intake raises, and the number formatting its messages share."""

from __future__ import annotations

import math

# EvoLink states its caps as "100 MB" and "10 MB" without saying which megabyte. We read them
# as decimal megabytes (1 MB = 1,000,000 bytes): if EvoLink meant MiB we refuse a few files it
# would have taken, which is cheap; the other reading would let files through that it refuses
# after the user has waited. Every size shown to users uses the same unit.
MB = 1_000_000


class MediaRejected(Exception):
    """A file the bot will not send to the provider.

    ``reason`` is shown to the user as is: specific, actionable, and never exception text.
    ``code`` is a stable machine code for logs, metrics and tests (e.g. ``"video_too_long"``).
    ``http_status`` is set for ``download_http_error``, so callers can tell a dead link
    (403/404/410) from a transient failure without parsing text.
    """

    def __init__(self, reason: str, *, code: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.http_status = http_status

    def __repr__(self) -> str:
        return f"MediaRejected(code={self.code!r}, reason={self.reason!r})"


def format_mb(size_bytes: int, *, round_up: bool = False) -> str:
    """``140_200_000`` → ``"140.2 MB"``.

    ``round_up`` is for sizes over a limit: plain rounding would show 100,000,001 bytes as
    "100.0 MB; the limit is 100 MB", which reads like a contradiction.
    """
    tenths = size_bytes / (MB / 10)
    tenths = math.ceil(tenths) if round_up else round(tenths)
    return f"{tenths / 10:.1f} MB"


def format_limit_mb(limit_bytes: int) -> str:
    """A cap as people write it: ``100_000_000`` → ``"100 MB"``, ``2_500_000`` → ``"2.5 MB"``."""
    return f"{limit_bytes / MB:g} MB"


def format_seconds(seconds: float, *, direction: int = 0) -> str:
    """One decimal; ``direction`` rounds away from a violated bound (+1 up, -1 down).

    Rounding toward the bound would show a 10.07 s clip as "10.0 s" next to "3–10 s".
    """
    tenths = seconds * 10
    if direction > 0:
        tenths = math.ceil(tenths - 1e-9)
    elif direction < 0:
        tenths = math.floor(tenths + 1e-9)
    else:
        tenths = round(tenths)
    return f"{tenths / 10:.1f} s"
