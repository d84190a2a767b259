"""A text not yet in anyone's language, and the marker that makes one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

Rounding = Literal["half", "up", "down"]


class Number(BaseModel):
    """A decimal shown the reader's way ("10.5" in English, "10,5" in German).

    `rounding` away from a violated limit: a 10.07 s clip next to a 10 s limit reads "10.1",
    not "10.0" (up); a 0.96 s clip under a 1 s minimum reads "0.9" (down).
    """

    model_config = ConfigDict(frozen=True)
    number: float
    digits: int = 1
    rounding: Rounding = "half"

    @classmethod
    def as_written(cls, value: float) -> Number:
        """A value such as a price with the decimals it has and no more ("12", "6.8")."""
        return cls(number=value, digits=len(f"{value:g}".partition(".")[2]))


class Span(BaseModel):
    """A length of time in words ("10 minutes", "90 Sekunden"), or `rough`ly in its largest
    unit, narrow ("2m", "2 Min.") for progress lines."""

    model_config = ConfigDict(frozen=True)
    seconds: int
    rough: bool = False


class Text(BaseModel):
    """A catalog msgid and the values of its ``{placeholders}``.

    Plain ``int`` values are identifiers and counts shown as digits (edit #1234 must not
    read "1,234"); `Number` and `Span` are formatted for the reader; a nested `Text` is
    translated too. It is stored as JSON where a text must outlive the request (a job's
    `error_message`), so a member reads it later in their own language.
    """

    model_config = ConfigDict(frozen=True)
    msgid: str
    params: dict[str, Param] = {}

    def stored(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_stored(cls, stored: str) -> Text:
        """A stored text; a row written before texts were stored this way (plain English,
        or a moderator's own words) comes back verbatim."""
        try:
            return cls.model_validate_json(stored)
        except ValidationError:
            return cls.verbatim(stored)

    @classmethod
    def verbatim(cls, words: str) -> Text:
        """Words shown as they are in every language: a row stored before texts were kept
        as msgids, or a moderator's own words."""
        return cls(msgid="{verbatim}", params={"verbatim": words})


Param = Text | Number | Span | int | str
Text.model_rebuild()


def N_(msgid: str, /, **params: Param) -> Text:
    """Mark `msgid` for extraction (``make i18n-extract``) and bind its placeholders."""
    return Text(msgid=msgid, params=params)
