"""Errors the engine raises to its callers, with text a member can act on."""

from __future__ import annotations

from bot.i18n import N_, Text, english


class EditRefused(Exception):
    """The request was refused before any provider call; nothing was charged or kept.

    `text` is shown to the member in their language; `reason` is its English, for logs.
    """

    def __init__(self, code: str, text: Text, *, retry_at: float | None = None) -> None:
        super().__init__(english(text))
        self.code = code
        self.text = text
        self.retry_at = retry_at

    @property
    def reason(self) -> str:
        return english(self.text)


class EngineStopping(EditRefused):
    def __init__(self) -> None:
        super().__init__(
            "restarting", N_("The bot is restarting; please run the command again in a minute.")
        )


class AdoptionRefused(Exception):
    """A task id was not adopted for a job; nothing was written. `text` is safe to show a
    moderator (`reason` is its English); `retry_later` means the provider could not be
    asked, not that it said no."""

    def __init__(self, code: str, text: Text, *, retry_later: bool = False) -> None:
        super().__init__(english(text))
        self.code = code
        self.text = text
        self.retry_later = retry_later

    @property
    def reason(self) -> str:
        return english(self.text)
