"""Errors the engine raises to its callers, with text a member can act on."""

from __future__ import annotations


class EditRefused(Exception):
    """The request was refused before any provider call; nothing was charged or kept."""

    def __init__(self, code: str, reason: str, *, retry_at: float | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.retry_at = retry_at


class EngineStopping(EditRefused):
    def __init__(self) -> None:
        super().__init__(
            "restarting", "The bot is restarting; please run the command again in a minute."
        )


class AdoptionRefused(Exception):
    """A task id was not adopted for a job; nothing was written. `reason` is safe to show a
    moderator; `retry_later` means the provider could not be asked, not that it said no."""

    def __init__(self, code: str, reason: str, *, retry_later: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.retry_later = retry_later
