"""Texts in the reader's language: the engine marks them (``N_``), the edge translates them.

Discord-free on purpose: the engine builds `Text` values (a msgid from the gettext catalogs
plus its parameters) and the cogs render them with the `Catalogs` for the reader's locale.
"""

from bot.i18n.catalogs import Catalogs, Speaker, english
from bot.i18n.locales import SHIPPED_LOCALES, babel_locale
from bot.i18n.text import N_, Number, Param, Span, Text

__all__ = [
    "N_",
    "SHIPPED_LOCALES",
    "Catalogs",
    "Number",
    "Param",
    "Span",
    "Speaker",
    "Text",
    "babel_locale",
    "english",
]
