"""The one error the admin service raises for bad moderator input."""

from __future__ import annotations


class AdminRefused(Exception):
    """The request was refused and nothing was written; `message` is safe to show as-is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
