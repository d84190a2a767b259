"""Test doubles shared by the test layers and the benchmarks (never imported by the bot)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.i18n import N_
from bot.jobs.notifier import ArchivedResult, DeliveryFailed, ModeratorAlert, StatusRefs
from storage.models import Job, JobState


class RecordingNotifier:
    """Keeps every notification in order; tests assert on it instead of on Discord."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.delivered: dict[int, list[ArchivedResult]] = {}
        self.delivered_bytes: dict[int, list[bytes]] = {}
        self.delivered_message_ids: dict[int, list[int]] = {}
        self.balance_alerts: list[tuple[float, int]] = []
        self.fail_deliveries = 0
        self.fail_status_posts = 0  # the next N status messages cannot be posted
        self.alerts: list[tuple[int, ModeratorAlert, int | None]] = []  # job, alert, channel
        self.status_shown: dict[int, JobState] = {}  # what each status message says now
        self._next_id = 1000
        self._changed = asyncio.Condition()

    async def _record(self, kind: str, job_id: int) -> None:
        async with self._changed:
            self.events.append((kind, job_id))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], limit_s: float = 20.0) -> None:
        """Wait until `predicate` holds, re-checking after every recorded notification."""
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_event(self, kind: str, job_id: int, limit_s: float = 20.0) -> None:
        await self.wait_for(lambda: (kind, job_id) in self.events, limit_s)

    async def wait_for_delivery(self, job_id: int, limit_s: float = 20.0) -> None:
        """Wait until the member has the result and its status message says done. The
        result is posted before the bot records it (so a crash in between redelivers rather
        than loses it); the status update comes after the record."""
        await self.wait_for(
            lambda: ("delivered", job_id) in self.events
            and self.status_shown.get(job_id) is JobState.DELIVERED,
            limit_s,
        )

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def kinds(self, job_id: int) -> list[str]:
        return [kind for kind, jid in self.events if jid == job_id]

    async def job_accepted(self, job: Job) -> StatusRefs:
        if self.fail_status_posts > 0:
            self.fail_status_posts -= 1
            await self._record("status_failed", job.id)
            raise RuntimeError("Discord refused the status message")
        await self._record("accepted", job.id)
        message_id = self._id()
        return StatusRefs(status_message_id=message_id, thread_id=message_id)

    async def progress(self, job: Job) -> None:
        self.status_shown[job.id] = job.state
        await self._record("progress", job.id)

    async def result_ready(self, job: Job, result: ArchivedResult) -> int:
        if self.fail_deliveries > 0:
            self.fail_deliveries -= 1
            await self._record("delivery_failed", job.id)
            raise DeliveryFailed(N_("Discord is unavailable"))
        self.delivered.setdefault(job.id, []).append(result)
        async with result.local_file() as path:  # what Discord would have received
            self.delivered_bytes.setdefault(job.id, []).append(path.read_bytes())
        message_id = self._id()
        self.delivered_message_ids.setdefault(job.id, []).append(message_id)
        await self._record("delivered", job.id)
        return message_id

    async def failed(self, job: Job) -> None:
        await self._record("failed", job.id)

    async def outcome_unknown(self, job: Job, log_channel_id: int | None) -> None:
        await self._record("unknown", job.id)

    async def balance_low(
        self, remaining: float, edits_left: int, log_channels: list[tuple[int, int]]
    ) -> None:
        self.balance_alerts.append((remaining, edits_left))
        await self._record("balance_low", 0)

    async def adopted(self, job: Job, log_channel_id: int | None) -> None:
        await self._record("adopted", job.id)

    async def outcome_lost(self, job: Job, log_channel_id: int | None) -> None:
        await self._record("lost", job.id)

    async def alert_moderators(
        self, job: Job, log_channel_id: int | None, alert: ModeratorAlert
    ) -> None:
        self.alerts.append((job.id, alert, log_channel_id))
        await self._record(f"alert:{alert.value}", job.id)

    def alerts_for(self, job_id: int) -> list[ModeratorAlert]:
        return [alert for jid, alert, _ in self.alerts if jid == job_id]
