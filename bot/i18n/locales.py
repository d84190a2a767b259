"""Which catalog and which number and date conventions a Discord locale gets."""

from __future__ import annotations

from pathlib import Path

# The catalogs shipped in bot/locale/ (English is the msgids themselves).
SHIPPED_LOCALES = ("en", "de", "es", "fr", "ja", "pt_BR")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

# Discord's locale values (discord.com/developers/docs/reference#locales) that have a
# catalog, with the Babel locale for their numbers and dates. Latin American Spanish reads
# the Spanish catalog with its own number conventions. Every other locale reads English.
_BABEL_LOCALES = {
    "en-US": "en_US",
    "en-GB": "en_GB",
    "de": "de",
    "es-ES": "es_ES",
    "es-419": "es_419",
    "fr": "fr",
    "ja": "ja",
    "pt-BR": "pt_BR",
}


def babel_locale(discord_locale: str | None) -> str:
    """``"pt-BR"`` → ``"pt_BR"``; a locale without a catalog (or none) → ``"en_US"``."""
    return _BABEL_LOCALES.get(discord_locale or "", "en_US")


def catalog_of(locale: str) -> str | None:
    """The shipped catalog for a Babel locale: the full name, else its language."""
    for candidate in (locale, locale.split("_")[0]):
        if candidate in SHIPPED_LOCALES:
            return candidate
    return None
