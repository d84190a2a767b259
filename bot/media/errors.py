"""The one exception media intake raises, and the number formatting its messages share."""

from __future__ import annotations

import math

from bot.evolink.spec import MB as MB  # re-exported: the megabyte every size is shown in
from bot.evolink.spec import format_limit_mb as format_limit_mb


class MediaRejected(Exception):
    """A file the bot will not send to the provider.

    ``reason`` is shown to the user as is: specific, actionable, and never exception text.
    ``code`` is a stable machine code for logs, metrics and tests (e.g. ``"video_too_short"``).
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

    def __reduce__(self) -> tuple[object, ...]:
        # Probes run in worker processes and their refusals travel back pickled; the default
        # would rebuild from ``args`` alone and lose the keyword-only code.
        return (_rebuild, (self.reason, self.code, self.http_status))


def _rebuild(reason: str, code: str, http_status: int | None) -> MediaRejected:
    return MediaRejected(reason, code=code, http_status=http_status)


def unreadable_clip(code: str = "video_unreadable") -> MediaRejected:
    """A damaged, incomplete or mislabelled clip (``code`` says which for logs and tests)."""
    return MediaRejected(
        "The clip could not be read; it may be damaged or incomplete. "
        "Export it again as .mp4 and try again",
        code=code,
    )


def too_complex_clip(model_range_text: str) -> MediaRejected:
    """The clip could not be checked within the prober's memory, time or index bounds."""
    return MediaRejected(
        "The clip could not be checked within the bot's limits; export it again as a "
        f"normal .mp4 ({model_range_text}, H.264) and try again",
        code="video_too_complex",
    )


def no_video_track() -> MediaRejected:
    return MediaRejected("The clip has no video track", code="video_no_track")


def format_mb(size_bytes: int, *, round_up: bool = False) -> str:
    """``140_200_000`` → ``"140.2 MB"``.

    ``round_up`` is for sizes over a limit: plain rounding would show 2,500,001 bytes as
    "2.5 MB; the limit is 2.5 MB", which reads like a contradiction.
    """
    tenths = size_bytes / (MB / 10)
    tenths = math.ceil(tenths) if round_up else round(tenths)
    return f"{tenths / 10:.1f} MB"


def format_seconds(seconds: float, *, direction: int = 0) -> str:
    """One decimal; ``direction`` rounds away from a violated bound (+1 up, -1 down).

    Rounding toward the bound would show a 10.07 s clip as "10.0 s" next to a 10 s limit.
    """
    tenths = seconds * 10
    if direction > 0:
        tenths = math.ceil(tenths - 1e-9)
    elif direction < 0:
        tenths = math.floor(tenths + 1e-9)
    else:
        tenths = round(tenths)
    return f"{tenths / 10:.1f} s"


def format_clock(seconds: float) -> str:
    """A point in a clip as players show it: ``72`` → ``"1:12"``, ``12.5`` → ``"0:12.5"``.

    Tenths appear only when the time is not a whole second, so "0:12" means 12.0 s."""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    whole, tenth = divmod(rest, 10)
    return f"{minutes}:{whole:02d}" + (f".{tenth}" if tenth else "")
