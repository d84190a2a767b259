"""How the engine tells the outside world (Discord, in production) what happened to a job."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from storage.models import Job, MediaObject


class StatusRefs(BaseModel):
    """Where the job's status lives, as opaque ids the notifier understands."""

    status_message_id: int | None = None
    thread_id: int | None = None


class ArchivedResult(BaseModel):
    media: MediaObject
    path: Path
    public_url: str
    expires_at: float | None


class DeliveryFailed(Exception):
    """The notifier could not deliver; `retryable` says whether trying later may help."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Notifier(Protocol):
    async def job_accepted(self, job: Job) -> StatusRefs: ...

    async def progress(self, job: Job) -> None: ...

    async def result_ready(self, job: Job, result: ArchivedResult) -> int:
        """Deliver the result; returns the id of the delivered message."""
        ...

    async def failed(self, job: Job) -> None: ...

    async def outcome_unknown(self, job: Job, log_channel_id: int | None) -> None:
        """Tell the member, and alert the moderators in `log_channel_id` if there is one."""
        ...

    async def balance_low(
        self, remaining: float, edits_left: int, log_channels: list[tuple[int, int]]
    ) -> None:
        """Warn every server's moderators (guild id, log channel id): new edits will soon be
        refused for want of provider credits."""
        ...

    async def adopted(self, job: Job, log_channel_id: int | None) -> None:
        """An uncertain edit's task was found and is now tracked: tell the member (and the
        moderators, whom `outcome_unknown` alerted) that it is running after all."""
        ...

    async def outcome_lost(self, job: Job, log_channel_id: int | None) -> None:
        """No task turned up for an uncertain edit in time: it is settled as a loss. Tell
        the member and alert the moderators."""
        ...
