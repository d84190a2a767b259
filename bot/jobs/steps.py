"""What the tracker does with a due job: ask the provider, settle or fail the job, archive
its result and post it. Every outcome is a persisted state change, so a restart resumes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from bot.evolink import (
    AccessDenied,
    AuthenticationFailed,
    EvolinkError,
    InsufficientCredits,
    NotFound,
    Task,
    TaskStatus,
)
from bot.i18n import Text, english
from bot.jobs.config import EngineConfig
from bot.jobs.deps import EngineDeps
from bot.jobs.engine import JobEngine
from bot.jobs.messages import (
    ARCHIVE_GONE,
    DELIVERY_FAILED,
    RESULT_EXPIRED_MESSAGE,
    RESULT_INVALID_MESSAGE,
    RESULT_MISSING_MESSAGE,
    RESULT_TOO_LARGE_MESSAGE,
    TASK_LOST_MESSAGE,
    TASK_NOT_FOUND_MESSAGE,
    explain_task_error,
    undeliverable,
)
from bot.jobs.notifier import DeliveryFailed, ModeratorAlert
from bot.jobs.provider_figures import provider_figures
from bot.jobs.scheduling import (
    expected_duration,
    next_poll_delay,
    poll_error_delay,
    result_link_deadline,
    retry_delay,
)
from bot.media.errors import FileNames, MediaRejected
from bot.media.fetch import FetchLimits, fetch_to_file
from bot.media.sniff import MediaKind, sniff_kind
from storage.models import Job, JobChanges, JobState, LedgerKind, MediaObject, MediaRole

log = logging.getLogger(__name__)

# Poll answers that repeating will not change: the key, the credits or the access must be
# fixed by the operator, so the job is checked at the slow pace meanwhile (§4.1: not retried
# unchanged).
PERMANENT_POLL_ERRORS: dict[type[EvolinkError], ModeratorAlert] = {
    AuthenticationFailed: ModeratorAlert.KEY_REJECTED,
    InsufficientCredits: ModeratorAlert.CREDITS_EXHAUSTED,
    AccessDenied: ModeratorAlert.ACCESS_DENIED,
}


class JobSteps:
    def __init__(
        self,
        engine: JobEngine,
        deps: EngineDeps,
        config: EngineConfig,
        *,
        wake: Callable[[], None],
        spawn: Callable[[str, Callable[[], Awaitable[None]]], None],
    ) -> None:
        self.engine = engine
        self.deps = deps
        self.config = config
        self._wake = wake  # something became due now
        self._spawn = spawn  # background work the tracker waits for at shutdown

    async def poll(self, job: Job) -> None:
        d = self.deps
        assert job.provider_task_id is not None
        try:
            task = await d.client.get_task(job.provider_task_id)
        except EvolinkError as error:
            await self._poll_failed(job, error)
            return
        await self._apply(job, task)

    async def _poll_failed(self, job: Job, error: EvolinkError) -> None:
        """No answer about the task: back off by the errors in a row, never refund.

        A 404 is "not found or expired" (§4.1) and proxies say it too, so it is retried like
        any error; only a persistent one goes to a moderator, and the job keeps being
        checked at the slow pace (a task that turns up is delivered or refunded as usual).
        """
        d, schedule = self.deps, self.config.schedule
        now = d.clock()
        errors = job.poll_errors + 1
        alert = PERMANENT_POLL_ERRORS.get(type(error))
        not_found_since = job.not_found_since
        if isinstance(error, NotFound):
            not_found_since = now if not_found_since is None else not_found_since
            missing_for = now - not_found_since
            if missing_for >= schedule.not_found_give_up_s:
                await self._lose_task(job)
                return
            if (errors >= schedule.not_found_alert_after
                    and missing_for >= schedule.not_found_alert_after_s):
                alert = ModeratorAlert.TASK_NOT_FOUND
        if alert is None:
            delay = poll_error_delay(errors, error.retry_after, schedule)
        else:
            delay = schedule.slow_poll_interval_s
        log.warning("poll failed job=%d errors=%d error=%r retry_in=%.0fs",
                    job.id, errors, error, delay)
        changes: JobChanges = {
            "poll_count": job.poll_count + 1, "poll_errors": errors,
            "not_found_since": not_found_since, "next_poll_at": now + delay,
        }
        raised = alert if alert is not None and job.error_code != alert else None
        if raised is not None:  # alerted once, not on every poll
            changes |= {"error_code": raised, "error_message": _held_message(raised)}
        updated = await d.jobs.update(job.id, now=now, expected={JobState.SUBMITTED}, **changes)
        if raised is not None:
            await d.notifier.progress(updated)  # the status message says what is going on
            await self._alert(updated, raised)

    async def _lose_task(self, job: Job) -> None:
        """404s for as long as a result could live: nothing more can come of this task. The
        provider may have billed it, so it is settled as a loss, never silently refunded."""
        d = self.deps
        job = await d.quota.close_job(
            job.id, LedgerKind.SETTLE, JobState.FAILED, expected={JobState.SUBMITTED},
            now=d.clock(), detail=ModeratorAlert.TASK_LOST, error_code=ModeratorAlert.TASK_LOST,
            error_message=TASK_LOST_MESSAGE.stored(), next_poll_at=None,
            inputs_expire_at=self.engine.inputs_expire_at(),
        )
        log.error("task lost job=%d task=%s", job.id, job.provider_task_id)
        await d.notifier.failed(job)
        await self._alert(job, ModeratorAlert.TASK_LOST)

    async def _apply(self, job: Job, task: Task) -> None:
        d = self.deps
        now = d.clock()
        # A good answer: the error run is over, and an alert about it no longer applies.
        answered: JobChanges = {
            "poll_count": job.poll_count + 1, "poll_errors": 0, "not_found_since": None,
            "provider_status": str(task.status), "error_code": None, "error_message": None,
        }
        answered.update(provider_figures(job, task))
        if task.status is TaskStatus.COMPLETED:
            # Billed before completion is reported (§5): settled with or without a result.
            result_url = task.result_url
            answered |= {
                "progress": 100, "result_url": result_url, "completed_at": now,
                "next_poll_at": now if result_url else now + retry_delay(1, self.config.schedule),
            }
            job = await d.quota.close_job(
                job.id, LedgerKind.SETTLE, JobState.DOWNLOADING, expected={JobState.SUBMITTED},
                now=now, inputs_expire_at=self.engine.inputs_expire_at(), **answered,
            )
            if d.metrics is not None and job.billed_seconds:
                d.metrics.record_billed_seconds(job.billed_seconds)
            if d.balance is not None:
                d.balance.refresh_soon()
            if result_url:
                await self.archive(job)
            else:
                log.warning("task completed without results job=%d task=%s", job.id, task.id)
            return
        if task.is_terminal:
            code = task.error.code if task.error else str(task.status)
            await self._fail(job, LedgerKind.REFUND, code)
            return
        elapsed = now - (job.submitted_at or now)
        estimated = expected_duration(
            elapsed, task.task_info.estimated_time if task.task_info else None,
            job.estimated_time_s,
        )
        callbacks = self.config.callback_url(job.id, job.callback_secret) is not None
        answered |= {
            "progress": task.progress, "estimated_time_s": estimated,
            "next_poll_at": now + next_poll_delay(
                estimated, elapsed, self.config.schedule, callbacks=callbacks
            ),
        }
        # Guarded: a moderator may have stopped the job meanwhile (its error must stay).
        updated = await d.jobs.update(job.id, now=now, expected={JobState.SUBMITTED}, **answered)
        if (updated.progress, updated.provider_status, updated.error_code) != (
            job.progress, job.provider_status, job.error_code
        ):
            await d.notifier.progress(updated)

    async def _fail(self, job: Job, ledger: LedgerKind, code: str) -> None:
        d = self.deps
        job = await d.quota.close_job(
            job.id, ledger, JobState.FAILED,
            expected={JobState.SUBMITTED, JobState.DOWNLOADING}, now=d.clock(), detail=code,
            error_code=code, error_message=explain_task_error(code).stored(), next_poll_at=None,
            inputs_expire_at=self.engine.inputs_expire_at(),
        )
        log.info("job failed job=%d code=%s", job.id, code)
        await d.notifier.failed(job)

    async def fetch_result(self, job: Job) -> None:
        """The provider completed (and billed) the job: get its video."""
        if job.result_url is None:
            await self._poll_for_result(job)
        else:
            await self.archive(job)

    async def _poll_for_result(self, job: Job) -> None:
        """Completed without a result link (or a moderator's refetch): ask again, a few
        times with backoff, then leave it to a moderator. The charge stays either way."""
        d, schedule = self.deps, self.config.schedule
        assert job.provider_task_id is not None
        try:
            task = await d.client.get_task(job.provider_task_id)
            result_url = task.result_url
        except EvolinkError as error:
            log.warning("result poll failed job=%d error=%r", job.id, error)
            result_url = None
        now = d.clock()
        if result_url is not None:
            job = await d.jobs.update(
                job.id, now=now, expected={JobState.DOWNLOADING}, result_url=result_url
            )
            await self.archive(job)
            return
        attempts = job.download_attempts + 1
        if attempts >= schedule.missing_result_polls:
            await self._give_up(job, ModeratorAlert.RESULT_MISSING, RESULT_MISSING_MESSAGE)
            return
        await d.jobs.update(
            job.id, now=now, expected={JobState.DOWNLOADING}, download_attempts=attempts,
            next_poll_at=now + retry_delay(attempts + 1, schedule),
        )

    async def archive(self, job: Job) -> None:
        """Download the result now: the provider's link dies after 24 h."""
        d, config = self.deps, self.config
        assert job.result_url is not None
        scratch = d.store.incoming_dir(job.id)
        await d.results.files.run(scratch.mkdir, parents=True, exist_ok=True)
        target = scratch / "result"
        try:
            fetched = await fetch_to_file(
                d.results, job.result_url, target,
                # Results can be large: bound silence, not total time, generously.
                FetchLimits(
                    max_bytes=config.max_result_bytes, read_timeout=120.0, total_timeout=3600.0
                ),
                config.intake.policies.results,
                names=FileNames.result(), durable=False,
            )
        except MediaRejected as error:
            await self._download_failed(job, error)
            return
        kind = sniff_kind(fetched.head)
        if kind not in (MediaKind.MP4, MediaKind.MOV):
            await d.results.files.run(fetched.path.unlink, True)
            await self._give_up(job, ModeratorAlert.RESULT_INVALID, RESULT_INVALID_MESSAGE)
            return
        now = d.clock()
        media = await d.store.publish(
            fetched.path, job_id=job.id, role=MediaRole.RESULT, position=0,
            filename=f"kling-edit-{job.id}{kind.extension}", content_type=kind.mime_type,
            size_bytes=fetched.size, sha256=fetched.sha256,
            expires_at=now + config.result_retention_s,
        )
        log.info("result archived job=%d bytes=%d", job.id, media.size_bytes)
        # The post need not wait for the disk: the file reaches it meanwhile, and a delivery
        # after a crash checks the copy first (`deliver`).
        self._spawn(f"persist-{job.id}", partial(d.store.persist, media))
        # Delivered right away by this same action, which keeps holding the job: the lease
        # covers a crash meanwhile and is renewed while the post takes.
        until = now + config.schedule.lease_s
        job = await d.jobs.transition(
            job.id, JobState.ARCHIVED, expected={JobState.DOWNLOADING}, now=now,
            next_poll_at=None, next_delivery_at=until, lease_until=until,
        )
        await self.deliver(job, fresh=media)

    async def _download_failed(self, job: Job, error: MediaRejected) -> None:
        """Retried with backoff until shortly before the link expires (§2.1: 24 h). A 403,
        404 or 410 before then may come from a CDN in front of the files: retried too."""
        d, schedule = self.deps, self.config.schedule
        if error.code == "download_too_large":  # the file will not shrink
            await self._give_up(job, ModeratorAlert.RESULT_INVALID, RESULT_TOO_LARGE_MESSAGE)
            return
        now = d.clock()
        assert job.completed_at is not None
        deadline = result_link_deadline(job.completed_at, schedule)
        if now >= deadline:
            await self._give_up(job, ModeratorAlert.RESULT_EXPIRED, RESULT_EXPIRED_MESSAGE)
            return
        attempts = job.download_attempts + 1
        delay = retry_delay(attempts, schedule)
        log.warning("result download failed job=%d attempt=%d code=%s status=%s retry_in=%.0fs",
                    job.id, attempts, error.code, error.http_status, delay)
        await d.jobs.update(
            job.id, now=now, expected={JobState.DOWNLOADING}, download_attempts=attempts,
            next_poll_at=min(now + delay, deadline),  # one last try right at the deadline
        )

    async def _give_up(self, job: Job, alert: ModeratorAlert, message: Text) -> None:
        """The provider billed this edit (settled), but we have no video to show: the member
        is told, a moderator alerted (`jobs refetch` asks again)."""
        d = self.deps
        job = await d.jobs.transition(
            job.id, JobState.FAILED, expected={JobState.DOWNLOADING}, now=d.clock(),
            detail=alert, error_code=alert, error_message=message.stored(), next_poll_at=None,
        )
        log.error("result lost job=%d task=%s code=%s", job.id, job.provider_task_id, alert)
        await d.notifier.failed(job)
        await self._alert(job, alert)

    async def _alert(self, job: Job, alert: ModeratorAlert) -> None:
        settings = await self.deps.guilds.settings(job.guild_id)
        await self.deps.notifier.alert_moderators(job, settings.log_channel_id, alert)

    async def deliver(self, job: Job, fresh: MediaObject | None = None) -> None:
        """Post the archived result; `fresh` is the one this process has just written."""
        d, schedule = self.deps, self.config.schedule
        archived = await self.engine.archived_result(job, fresh)
        if archived is None:
            await self._give_up_delivery(job, ARCHIVE_GONE)
            return
        if fresh is None and not await d.store.intact(archived.media):
            await self._archive_damaged(job, archived.media)
            return
        try:
            message_id = await d.notifier.result_ready(job, archived)
        except DeliveryFailed as error:
            attempts = job.delivery_attempts + 1
            if not error.retryable or attempts >= schedule.max_delivery_attempts:
                await self._give_up_delivery(job, error.reason)
                return
            log.warning("delivery failed job=%d attempt=%d reason=%s", job.id, attempts,
                        english(error.reason))
            await d.jobs.update(
                job.id, now=d.clock(), delivery_attempts=attempts,
                next_delivery_at=d.clock() + retry_delay(attempts, schedule),
            )
            return
        now = d.clock()
        delivered = await d.jobs.transition(
            job.id, JobState.DELIVERED, expected={JobState.ARCHIVED}, now=now,
            delivered_message_id=message_id, delivered_at=now, next_delivery_at=None,
            delivery_attempts=job.delivery_attempts + 1,
        )
        await d.notifier.progress(delivered)  # the status message now says "Done"
        if d.metrics is not None and job.completed_at is not None:
            d.metrics.observe_delivery_delay(now - job.completed_at)
        log.info("job delivered job=%d message=%d", job.id, message_id)

    async def _archive_damaged(self, job: Job, media: MediaObject) -> None:
        """A crash cut the archive short before it reached the disk: fetch it again while the
        provider's link lives (the download's own rules apply if it does not)."""
        d = self.deps
        log.error("archived result damaged job=%d media=%d: fetching again", job.id, media.id)
        await d.store.delete(media)
        now = d.clock()
        await d.jobs.transition(
            job.id, JobState.DOWNLOADING, expected={JobState.ARCHIVED}, now=now,
            detail="archive_damaged", next_delivery_at=None, next_poll_at=now,
            download_attempts=0,
        )
        self._wake()

    async def _give_up_delivery(self, job: Job, reason: Text) -> None:
        d = self.deps
        job = await d.jobs.transition(
            job.id, JobState.FAILED, expected={JobState.ARCHIVED}, now=d.clock(),
            detail=DELIVERY_FAILED, error_code=DELIVERY_FAILED,
            error_message=undeliverable(reason).stored(),
            next_delivery_at=None,
        )
        await d.notifier.failed(job)
        await self._alert(job, ModeratorAlert.UNDELIVERABLE)


def _held_message(alert: ModeratorAlert) -> str | None:
    """What the member reads while a moderator checks a job that is still tracked."""
    return TASK_NOT_FOUND_MESSAGE.stored() if alert is ModeratorAlert.TASK_NOT_FOUND else None
