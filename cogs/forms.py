"""The prompt forms a bot process has open."""

from __future__ import annotations


class OpenForms:
    """The prompt forms this process has opened and not yet seen time out.

    A form lives in the process that opened it: one opened before a restart reaches no
    handler, and discord.py drops it silently. Knowing what we opened, the bot answers any
    other form at once (Discord's 3 s start when Discord receives the submit, not when the
    bot does).
    """

    def __init__(self) -> None:
        self._open: set[str] = set()

    def opened(self, custom_id: str) -> None:
        self._open.add(custom_id)

    def closed(self, custom_id: str) -> None:
        self._open.discard(custom_id)

    def __contains__(self, custom_id: object) -> bool:
        return custom_id in self._open
