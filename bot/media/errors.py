"""The one exception media intake raises, and the number formatting its messages share."""

from __future__ import annotations

import math
from typing import NamedTuple

from bot.evolink.spec import MB as MB  # re-exported: the megabyte every size is shown in
from bot.evolink.spec import format_limit_mb as format_limit_mb
from bot.i18n import N_, Number, Text, english
from bot.i18n.text import Rounding


class MediaRejected(Exception):
    """A file the bot will not send to the provider.

    ``text`` is shown to the user in their language: specific, actionable, and never
    exception text; ``reason`` is its English, for logs and tests.
    ``code`` is a stable machine code for logs, metrics and tests (e.g. ``"video_too_short"``).
    ``http_status`` is set for ``download_http_error``, so callers can tell a dead link
    (403/404/410) from a transient failure without parsing text.
    """

    def __init__(self, text: Text, *, code: str, http_status: int | None = None) -> None:
        super().__init__(english(text))
        self.text = text
        self.code = code
        self.http_status = http_status

    @property
    def reason(self) -> str:
        return english(self.text)

    def __repr__(self) -> str:
        return f"MediaRejected(code={self.code!r}, reason={self.reason!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Probes run in worker processes and their refusals travel back pickled; the default
        # would rebuild from ``args`` alone and lose the keyword-only code.
        return (_rebuild, (self.text, self.code, self.http_status))


def _rebuild(text: Text, code: str, http_status: int | None) -> MediaRejected:
    return MediaRejected(text, code=code, http_status=http_status)


class FileNames(NamedTuple):
    """How refusals name a file: at the start of a sentence and inside one."""

    label: Text
    noun: Text

    @classmethod
    def clip(cls) -> FileNames:
        return cls(N_("The clip"), N_("the clip"))

    @classmethod
    def image(cls, index: int) -> FileNames:
        return cls(N_("Reference image {index}", index=index),
                   N_("reference image {index}", index=index))

    @classmethod
    def result(cls) -> FileNames:
        return cls(N_("The finished video"), N_("the finished video"))

    @classmethod
    def file(cls) -> FileNames:
        return cls(N_("The file"), N_("the file"))


def megabytes(size_bytes: int, *, round_up: bool = False) -> Number:
    """A size in MB with one decimal, in the reader's notation (see `format_mb`)."""
    return Number(number=size_bytes / MB, rounding="up" if round_up else "half")


def seconds(value: float, *, direction: int = 0) -> Number:
    """A length in seconds with one decimal (see `format_seconds` for `direction`)."""
    rounding: Rounding = "up" if direction > 0 else "down" if direction < 0 else "half"
    return Number(number=value, rounding=rounding)


def unreadable_clip(code: str = "video_unreadable") -> MediaRejected:
    """A damaged, incomplete or mislabelled clip (``code`` says which for logs and tests)."""
    return MediaRejected(
        N_("The clip could not be read; it may be damaged or incomplete. "
           "Export it again as .mp4 and try again"),
        code=code,
    )


def too_complex_clip(model_range_text: str) -> MediaRejected:
    """The clip could not be checked within the prober's memory, time or index bounds."""
    return MediaRejected(
        N_("The clip could not be checked within the bot's limits; export it again as a "
           "normal .mp4 ({range}, H.264) and try again", range=model_range_text),
        code="video_too_complex",
    )


def no_video_track() -> MediaRejected:
    return MediaRejected(N_("The clip has no video track"), code="video_no_track")


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
