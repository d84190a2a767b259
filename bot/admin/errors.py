"""The one error the admin service raises for bad moderator input."""

from __future__ import annotations

from bot.i18n import Text, english


class AdminRefused(Exception):
    """The request was refused and nothing was written; `text` is shown to the moderator
    in their language, `message` is its English (logs, tests)."""

    def __init__(self, text: Text) -> None:
        super().__init__(english(text))
        self.text = text

    @property
    def message(self) -> str:
        return english(self.text)
