"""The gettext catalogs, read from their .po files at start-up, and rendering with Babel.

The .po files are the only form kept: read with Babel at start-up, a compiled copy can
never lag behind them, and `pip install`, CI and Docker need no compile step.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Literal

from babel.dates import format_timedelta
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from bot.i18n.locales import LOCALE_DIR, SHIPPED_LOCALES, babel_locale, catalog_of
from bot.i18n.text import Number, Param, Span, Text

_Unit = Literal["day", "hour", "minute", "second"]
_UNITS: tuple[tuple[_Unit, int], ...] = (("day", 86400), ("hour", 3600), ("minute", 60))


def _read_catalog(path: Path) -> dict[str, str]:
    with path.open("rb") as po:
        catalog = read_po(po)
    # A fuzzy or empty entry is not a translation yet: the English msgid is shown instead.
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


class Catalogs:
    """Every shipped language's translations (msgid → text)."""

    def __init__(self, directory: Path = LOCALE_DIR) -> None:
        self._translations = {
            locale: _read_catalog(directory / locale / "LC_MESSAGES" / "messages.po")
            for locale in SHIPPED_LOCALES
            if locale != "en"
        }

    def translation(self, msgid: str, locale: str) -> str | None:
        """`msgid` in the Babel `locale`'s catalog; None for English or a missing entry."""
        catalog = catalog_of(locale)
        if catalog is None or catalog == "en":
            return None
        return self._translations[catalog].get(msgid)

    def speaker(self, discord_locale: str | None) -> Speaker:
        return Speaker(self, babel_locale(discord_locale))


class Speaker:
    """Renders texts for one reader: their catalog, their numbers and durations."""

    def __init__(self, catalogs: Catalogs | None, locale: str) -> None:
        self.catalogs = catalogs
        self.locale = locale

    def __call__(self, text: Text) -> str:
        template = (
            self.catalogs and self.catalogs.translation(text.msgid, self.locale)
        ) or text.msgid
        return template.format_map({k: self._value(v) for k, v in text.params.items()})

    def join(self, texts: list[Text]) -> str:
        return "\n".join(self(text) for text in texts)

    def _value(self, value: Param) -> str:
        if isinstance(value, Text):
            return self(value)
        if isinstance(value, Number):
            number, scale = value.number, 10**value.digits
            if value.rounding == "up":
                number = math.ceil(number * scale - 1e-9) / scale
            elif value.rounding == "down":
                number = math.floor(number * scale + 1e-9) / scale
            pattern = "#,##0." + "0" * value.digits if value.digits else "#,##0"
            return format_decimal(number, format=pattern, locale=self.locale)
        if isinstance(value, Span):
            if value.rough:
                return format_timedelta(
                    timedelta(seconds=value.seconds), format="narrow", locale=self.locale
                )
            return self.span(value.seconds)
        return str(value)

    def span(self, seconds: int) -> str:
        """In the largest unit it is a whole number of: "10 minutes", "90 seconds"."""
        unit: _Unit = next(
            (name for name, size in _UNITS if seconds and seconds % size == 0), "second"
        )
        return format_timedelta(
            timedelta(seconds=seconds), granularity=unit, threshold=1e9, locale=self.locale
        )


def english(text: Text) -> str:
    """The text as the msgid reads, for logs, tests and the fallback of a missing catalog."""
    return Speaker(None, "en_US")(text)
