"""How the engine tells the outside world (Discord, in production) what happened to a job."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from bot.i18n import Text, english
from bot.jobs.messages import DELIVERY_FAILED
from storage.models import TASK_NOT_FOUND_CODE, Job, MediaObject


class StatusRefs(BaseModel):
    """Where the job's status lives, as opaque ids the notifier understands."""

    status_message_id: int | None = None
    thread_id: int | None = None


class ArchivedResult(BaseModel):
    media: MediaObject
    # The video as a local file for as long as the context lasts (a download where the store
    # is remote): opened only when it is attached, not when it is linked.
    local_file: Callable[[], AbstractAsyncContextManager[Path]]
    public_url: str
    expires_at: float | None  # when `public_url` stops working


class ModeratorAlert(StrEnum):
    """What happened to a job that a moderator (or the operator) must look at. A job the
    alert concerns carries the value as its `error_code`; the texts are the front end's."""

    TASK_NOT_FOUND = TASK_NOT_FOUND_CODE  # persistent 404: the task may still run and bill
    TASK_LOST = "task_lost"  # 404s for as long as a result could live: settled as a loss
    RESULT_MISSING = "result_missing"  # completed and billed, but no video came with it
    RESULT_EXPIRED = "result_expired"  # the video could not be downloaded while its link lived
    RESULT_INVALID = "result_invalid"  # what the provider sent is not a video we can keep
    KEY_REJECTED = "provider_key_rejected"  # 401 on polls
    CREDITS_EXHAUSTED = "provider_credits_exhausted"  # 402 on polls
    ACCESS_DENIED = "provider_access_denied"  # 403 on polls
    UNDELIVERABLE = DELIVERY_FAILED  # Discord refused the post in the thread and the channel


class DeliveryFailed(Exception):
    """The notifier could not deliver; `retryable` says whether trying later may help."""

    def __init__(self, reason: Text, *, retryable: bool = True) -> None:
        super().__init__(english(reason))
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

    async def alert_moderators(
        self, job: Job, log_channel_id: int | None, alert: ModeratorAlert
    ) -> None:
        """Tell the moderators in `log_channel_id` (if there is one) what happened to the job;
        the member hears of it through `progress` or `failed`."""
        ...
