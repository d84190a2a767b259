"""JobEngine: one clip and prompt become exactly one provider task, step by persisted step.

DESIGN.md §1: policy → fetch → sniff/probe → reserve → rehost → create → announce, with the
announcement moved in front of the create call: where the status message cannot be posted,
the result could not be delivered either, so nothing is submitted or billed (issue 13).
Each arrow is a state transition in SQLite, so `resume()` can pick a job up wherever it
stopped.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from bot.evolink import (
    EditTaskRequest,
    EvolinkClient,
    EvolinkError,
    SubmissionOutcomeUnknown,
)
from bot.evolink.spec import ModelSpec, spec_for
from bot.i18n import Text
from bot.jobs.admission import IntakeSlots
from bot.jobs.balance import ProviderBalance
from bot.jobs.config import EngineConfig
from bot.jobs.errors import EditRefused, EngineStopping
from bot.jobs.intake import Intake, precheck_request
from bot.jobs.messages import (
    DISK_LOW,
    INTAKE_FAILED,
    PROVIDER_BALANCE_TOO_LOW,
    RESTARTED_WHILE_CHECKING,
    STATUS_POST_FAILED,
    STATUS_POST_FAILED_MESSAGE,
    SUBMISSION_UNKNOWN_MESSAGE,
    TAKEN_OVER_UNPUBLISHED,
    TAKEN_OVER_UNPUBLISHED_MESSAGE,
    explain_submit_error,
    model_not_offered,
)
from bot.jobs.models import EditRequest
from bot.jobs.notifier import ArchivedResult, Notifier
from bot.jobs.policy import QuotaPolicy, Windows
from bot.jobs.provider_figures import provider_figures
from bot.jobs.scheduling import first_poll_delay
from bot.media.errors import MediaRejected
from bot.media.fetch import Fetcher
from bot.media.filework import FileWork
from bot.media.store import MediaStore
from bot.metrics import Metrics
from storage.admin import AdminRepository
from storage.guilds import GuildRepository
from storage.jobs import JobRepository, StaleTransition
from storage.media import MediaRepository
from storage.models import (
    Job,
    JobChanges,
    JobSource,
    JobState,
    LedgerKind,
    MediaObject,
    MediaRole,
    NewJob,
)
from storage.quota import QuotaRepository

log = logging.getLogger(__name__)

_CREATE_OUTCOME_UNKNOWN = (SubmissionOutcomeUnknown,)
# The states resume() continues from the job's scratch folder (check, then publish).
_RESUMED_FROM_SCRATCH = frozenset(
    {JobState.RECEIVED, JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED}
)


class DiskUsage(Protocol):
    @property
    def free(self) -> int: ...


@dataclass
class EngineDeps:
    jobs: JobRepository
    quota: QuotaRepository
    media: MediaRepository
    guilds: GuildRepository
    store: MediaStore
    client: EvolinkClient
    intake: Intake
    # Results come from the provider: fetched on its pool, never queued behind members'.
    results: Fetcher
    notifier: Notifier
    clock: Callable[[], float]
    admin: AdminRepository
    files: FileWork  # blocking file-system calls, off the loop and off its default pool
    metrics: Metrics | None = None
    balance: ProviderBalance | None = None
    disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage


class JobEngine:
    def __init__(self, deps: EngineDeps, config: EngineConfig, wake: Callable[[], None]) -> None:
        self.deps = deps
        self.config = config
        self.policy = QuotaPolicy(config.quota)
        self._intake_slots = IntakeSlots(
            config.max_concurrent_intakes, config.max_queued_intakes
        )
        self._wake_scheduler = wake
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()

    async def until_intakes_waiting(self, count: int) -> None:
        """Return once `count` edits wait for an intake slot."""
        await self._intake_slots.until_waiting(count)

    def wake_scheduler(self) -> None:
        """Something became due now: the tracker re-reads its schedule."""
        self._wake_scheduler()

    # --- public entry points -------------------------------------------------------------

    async def submit(self, request: EditRequest) -> Job:
        """Run a new edit up to submission. Raises EditRefused when nothing was started.

        Returns the job in SUBMITTED, FAILED (provider refused; nothing charged) or
        SUBMISSION_UNKNOWN state.
        """
        if self._stopping:
            raise EngineStopping()
        spec = self.config.enabled_spec(request.model)
        if spec is None:
            raise EditRefused("model_not_offered", model_not_offered(str(request.model)))
        await self._require_balance(spec)
        await self._require_disk_space()
        try:
            # What Discord already told us costs nothing to refuse, so it is no "attempt".
            precheck_request(
                request.video.declared_size,
                [image.declared_size for image in request.images],
                request.start_s,
                spec,
            )
        except MediaRejected as refusal:
            raise EditRefused(refusal.code, refusal.text) from None
        async with self._intake_slots.taken(wait=False):
            job = await self._admit(request, spec)
            log.info("job received job=%d guild=%d user=%d", job.id, job.guild_id, job.user_id)
            job = await self._check_and_reserve(job)
        return await self._publish_and_submit(job, interactive=True)

    async def _admit(self, request: EditRequest, spec: ModelSpec) -> Job:
        """Create the job if the member's limits let a new edit start, atomically."""
        d = self.deps
        now = d.clock()
        windows = Windows.at(now)
        return await d.quota.admit(
            NewJob(
                guild_id=request.guild_id, channel_id=request.channel_id,
                user_id=request.user_id, model=spec.name, prompt=request.prompt,
                keep_audio=request.keep_audio, parent_job_id=request.parent_job_id,
                callback_secret=secrets.token_urlsafe(24), owner=d.jobs.owner,
                lease_until=now + self.config.schedule.lease_s,
                source=JobSource(
                    video_url=request.video.url,
                    video_is_user_link=request.video_is_user_link,
                    video_media_token=request.video.media_token,
                    rules_channel_id=request.rules_channel_id,
                    public_locale=request.public_locale,
                    role_ids=request.role_ids,
                    start_s=request.start_s,
                    image_urls=[image.url for image in request.images if not image.media_token],
                    image_media_tokens=[
                        image.media_token for image in request.images if image.media_token
                    ],
                ),
            ),
            day_start=windows.day_start, month_start=windows.month_start,
            attempts_after=self.policy.attempts_after(now), now=now,
            decide=lambda snapshot: self.policy.admit(
                snapshot, channel_id=request.channel_id, parent_id=request.rules_channel_id,
                quota_seconds=spec.quota_seconds(spec.min_seconds), now=now,
            ),
        )

    async def resume(self) -> int:
        """Pick up every unfinished job after a restart; returns how many were touched."""
        d = self.deps
        now = d.clock()
        # With other processes running, only what this one left behind: theirs is theirs,
        # and a lease this process held is taken over by any process once it ends.
        unfinished = await d.jobs.in_states(
            [
                JobState.RECEIVED, JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED,
                JobState.SUBMITTING, JobState.SUBMITTED, JobState.DOWNLOADING,
                JobState.ARCHIVED,
            ],
            owned_only=self.config.shared_jobs,
        )
        # Nothing downloads yet: what a crashed download left is swept, except the scratch
        # folders of jobs about to be checked or published again.
        await d.store.sweep_incoming(
            keep={job.id for job in unfinished if job.state in _RESUMED_FROM_SCRATCH}
        )
        for job in unfinished:
            log.info("resuming job=%d state=%s", job.id, job.state)
            await self._carry_on(job, now)
        self.wake_scheduler()
        return len(unfinished)

    async def take_over(self, orphans: list[Job]) -> None:
        """Carry on with jobs another process held before the provider and let go of (it
        died): the same rules as a restart, except that the checked files of a RESERVED
        job stayed on the dead process's disk, so its reservation is released."""
        now = self.deps.clock()
        for job in orphans:
            log.warning("taking over job=%d state=%s", job.id, job.state)
            try:
                if job.state is JobState.RESERVED:
                    await self._release_unpublished(job)
                else:
                    await self._carry_on(job, now)
            except Exception:  # one job's trouble (a Discord post) must not strand the rest
                log.exception("taking over job=%d failed", job.id)
        self.wake_scheduler()

    async def _release_unpublished(self, job: Job) -> None:
        d = self.deps
        try:
            job = await d.quota.close_job(
                job.id, LedgerKind.RELEASE, JobState.FAILED, expected={JobState.RESERVED},
                now=d.clock(), detail=TAKEN_OVER_UNPUBLISHED, error_code=TAKEN_OVER_UNPUBLISHED,
                error_message=TAKEN_OVER_UNPUBLISHED_MESSAGE.stored(),
                inputs_expire_at=self.inputs_expire_at(),
            )
        except StaleTransition:
            return  # its holder came back and moved it on
        await d.notifier.failed(job)

    async def _carry_on(self, job: Job, now: float) -> None:
        """Continue an unfinished job from its recorded state (after a restart or a
        takeover); a create that may have been sent is never sent again."""
        d = self.deps
        if job.state in _RESUMED_FROM_SCRATCH:
            self._spawn(self._resume_submit(job), f"resume-{job.id}")
        elif job.state is JobState.SUBMITTING:
            try:
                job = await d.jobs.become_uncertain(
                    job.id, expected={JobState.SUBMITTING}, now=now,
                    detail="restarted during submission",
                    inputs_expire_at=self.inputs_expire_at(),
                    error_code="submission_unknown",
                    error_message=SUBMISSION_UNKNOWN_MESSAGE.stored(),
                )
            except StaleTransition:
                return  # its callback (served already) adopted the task first
            await self._report_outcome_unknown(job)
        elif job.state is JobState.SUBMITTED:
            if job.status_message_id is None:
                job = await self.announce(job)
            # Nothing runs yet, so any lease left by the previous process is stale.
            await d.jobs.update(job.id, now=now, next_poll_at=now)
        elif job.state is JobState.DOWNLOADING:
            await d.jobs.update(job.id, now=now, next_poll_at=now)
        elif job.state is JobState.ARCHIVED:
            await d.jobs.update(job.id, now=now, next_delivery_at=now)

    async def stop(self) -> None:
        """Refuse new work and cancel background resumptions; their state stays persisted."""
        self._stopping = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def announce(self, job: Job) -> Job:
        """Post the status message (once) of a job already running at the provider.

        A Discord failure here must not lose the job: it is running and billed, so the
        result is then delivered to the channel instead.
        """
        try:
            return await self._post_status(job)
        except Exception:
            log.exception("status message failed job=%d; delivering to the channel", job.id)
            return job

    async def _post_status(self, job: Job) -> Job:
        refs = await self.deps.notifier.job_accepted(job)
        return await self.deps.jobs.update(
            job.id, now=self.deps.clock(),
            status_message_id=refs.status_message_id, thread_id=refs.thread_id,
        )

    async def _require_balance(self, spec: ModelSpec) -> None:
        """Refuse, before anything is fetched or charged, an edit the provider account
        cannot pay for. The provider may hold the longest clip's price until it has
        measured the clip (EVOLINK_API.md §1.2 states only an estimate), so that is what
        the balance must cover, beyond what the edits in flight hold."""
        balance = self.deps.balance
        if balance is not None and not await balance.covers(spec.credits_for(spec.max_seconds)):
            raise EditRefused("provider_balance", PROVIDER_BALANCE_TOO_LOW)

    async def _require_disk_space(self) -> None:
        """Refuse, before anything is downloaded, an edit the data disk has no room for."""
        config = self.config
        if config.min_free_disk_bytes <= 0:
            return
        usage = await self.deps.files.run(self.deps.disk_usage, config.data_dir)
        if usage.free < config.min_free_disk_bytes:
            log.warning("disk low: refusing new edits free=%d min=%d dir=%s",
                        usage.free, config.min_free_disk_bytes, config.data_dir)
            raise EditRefused("disk_low", DISK_LOW)

    async def _report_outcome_unknown(self, job: Job) -> None:
        """Tell the member, and the moderators where the server has a log channel."""
        settings = await self.deps.guilds.settings(job.guild_id)
        await self.deps.notifier.outcome_unknown(job, settings.log_channel_id)

    async def archived_result(
        self, job: Job, media: MediaObject | None = None
    ) -> ArchivedResult | None:
        """The job's archived video (`media`, else looked up) as the notifier posts it, if
        it is still kept."""
        if media is None:
            results = await self.deps.media.for_job(job.id, MediaRole.RESULT)
            if not results:
                return None
            media = results[0]
        store = self.deps.store
        link = await store.public_link(media)
        return ArchivedResult(
            media=media, local_file=partial(store.local_file, media, store.incoming_dir(job.id)),
            public_url=link.url, expires_at=link.expires_at,
        )

    # --- the pipeline -------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _resume_submit(self, job: Job) -> None:
        try:
            if job.state in (JobState.RECEIVED, JobState.FETCHING):
                if not job.source.video_url:
                    # "Edit again" reads our own archived result. It is not checked again:
                    # its "checking" reply died with the old process, so the member would
                    # meet a charged edit nobody showed them as accepted. Nothing is
                    # reserved before the check, so rejecting costs nothing and frees the
                    # running-edit slot; once rejected it is not resumed (told once).
                    await self._reject(job, "restarted", RESTARTED_WHILE_CHECKING)
                    raise EditRefused("restarted", RESTARTED_WHILE_CHECKING)
                async with self._intake_slots.taken(wait=True):
                    job = await self._check_and_reserve(job)
            await self._publish_and_submit(job, interactive=False)
        except EditRefused:
            latest = await self.deps.jobs.get(job.id)
            if latest is not None:
                await self.deps.notifier.failed(latest)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("resuming job=%d failed", job.id)

    async def _check_and_reserve(self, job: Job) -> Job:
        """Fetch and check the inputs, then reserve quota; refusals leave nothing behind.

        The job's own rules apply, also when it is resumed: its model's limits and price,
        and the member's role tier as it was at submit (`job.source.role_ids`).
        """
        d = self.deps
        scratch = d.store.incoming_dir(job.id)
        if job.state is JobState.RECEIVED:
            job = await d.jobs.transition(
                job.id, JobState.FETCHING, expected={JobState.RECEIVED}, now=d.clock()
            )
        try:
            spec = spec_for(job.model)
            checked = await d.intake.gather(job.source, scratch, spec)
            billed = spec.billed_seconds(checked.video.duration_s)
            counted = spec.quota_seconds(billed)  # what the quota spends: the price-weighted s
            now = d.clock()
            windows = Windows.at(now)
            job = await d.jobs.update(
                job.id, now=now,
                source=job.source.model_copy(
                    update={"validated": checked.validated, "cut": checked.cut}
                ),
            )
            return await d.quota.reserve(
                job, billed_seconds=billed,
                credits=spec.credits_for(checked.video.duration_s),
                duration_s=checked.video.duration_s, role_ids=job.source.role_ids,
                day_start=windows.day_start, month_start=windows.month_start, now=now,
                quota_seconds=counted,
                decide=lambda snapshot: self.policy.check(
                    snapshot, channel_id=job.channel_id, parent_id=job.source.rules_channel_id,
                    quota_seconds=counted, now=now,
                ),
            )
        except MediaRejected as refusal:
            text = refusal.text
            await self._reject(job, refusal.code, text)
            raise EditRefused(refusal.code, text) from None
        except EditRefused as refusal:
            await self._reject(job, refusal.code, refusal.text)
            raise
        except asyncio.CancelledError:
            # Shutdown mid-fetch: the job stays FETCHING and resume() fetches again.
            await asyncio.shield(self.deps.intake.discard_scratch(scratch))
            raise
        except Exception as error:
            log.exception("intake failed job=%d", job.id)
            await self._reject(job, "internal_error", INTAKE_FAILED)
            raise EditRefused("internal_error", INTAKE_FAILED) from error

    async def _reject(self, job: Job, code: str, reason: Text) -> None:
        d = self.deps
        await d.intake.discard_scratch(d.store.incoming_dir(job.id))
        await d.jobs.transition(
            job.id, JobState.REJECTED, expected={JobState.RECEIVED, JobState.FETCHING},
            now=d.clock(), detail=code, error_code=code, error_message=reason.stored(),
        )
        log.info("job rejected job=%d code=%s", job.id, code)

    async def _publish_and_submit(self, job: Job, *, interactive: bool) -> Job:
        if job.state is JobState.RESERVED:
            job = await self._publish(job)
        if job.state is JobState.REHOSTED and job.status_message_id is None:
            # The status message first: where it cannot be posted, nothing could be
            # delivered either, so nothing is sent to the provider (and nothing billed).
            job = await self._announce_or_release(job, interactive=interactive)
            if job.state is not JobState.REHOSTED:
                return job
        job, created = await self._create_task(job, interactive=interactive)
        if created:
            job = await self._start_tracking(job)
            await self.deps.notifier.progress(job)  # the status message says "Running"
        return job

    async def _announce_or_release(self, job: Job, *, interactive: bool) -> Job:
        try:
            return await self._post_status(job)
        except Exception:
            log.exception("status message failed job=%d: not submitting it", job.id)
            d = self.deps
            job = await d.quota.close_job(
                job.id, LedgerKind.RELEASE, JobState.FAILED, expected={JobState.REHOSTED},
                now=d.clock(), detail=STATUS_POST_FAILED, error_code=STATUS_POST_FAILED,
                error_message=STATUS_POST_FAILED_MESSAGE.stored(),
                inputs_expire_at=self.inputs_expire_at(),
            )
            if not interactive:
                await d.notifier.failed(job)
            return job

    async def _publish(self, job: Job) -> Job:
        """Move checked inputs from scratch to public URLs; safe to repeat after a crash."""
        d = self.deps
        scratch = d.store.incoming_dir(job.id)
        published = {(m.role, m.position) for m in await d.media.for_job(job.id)}
        for item in job.source.validated:
            if (item.role, item.position) in published:
                continue
            await d.store.publish(
                scratch / item.scratch_name, job_id=job.id, role=item.role,
                position=item.position, filename=item.filename,
                content_type=item.content_type, size_bytes=item.size_bytes, sha256=item.sha256,
                # Kept as long as the result, so "Re-run" works once Discord's links die.
                kept_until=d.clock() + self.config.result_retention_s,
            )
        await d.intake.discard_scratch(scratch)
        return await d.jobs.transition(
            job.id, JobState.REHOSTED, expected={JobState.RESERVED}, now=d.clock()
        )

    def callback_url(self, job: Job) -> str | None:
        base = self.config.callback_base_url
        return f"{base}/callbacks/evolink/{job.id}/{job.callback_secret}" if base else None

    async def _create_task(self, job: Job, *, interactive: bool) -> tuple[Job, bool]:
        """Send the create call once; True when this call's answer made the job SUBMITTED
        (the caller then announces and tracks it).

        Each outcome is recorded only while the job is still SUBMITTING: the provider's
        callback may have adopted the task first (bot/jobs/adoption.py), and then the job
        is left as the adoption made it.
        """
        d = self.deps
        inputs = await d.media.for_job(job.id)
        video = next(m for m in inputs if m.role is MediaRole.INPUT_VIDEO)
        images = [m for m in inputs if m.role is MediaRole.INPUT_IMAGE]
        request = EditTaskRequest(
            model=job.model, prompt=job.prompt, video_url=(await d.store.public_link(video)).url,
            image_urls=[(await d.store.public_link(m)).url for m in images],
            keep_original_sound=job.keep_audio, callback_url=self.callback_url(job),
        )
        job = await d.jobs.transition(
            job.id, JobState.SUBMITTING, expected={JobState.REHOSTED}, now=d.clock()
        )
        try:
            task = await d.client.create_edit_task(request)
        except _CREATE_OUTCOME_UNKNOWN as error:
            log.error("create outcome unknown job=%d error=%r", job.id, error)
            try:
                job = await d.jobs.become_uncertain(
                    job.id, expected={JobState.SUBMITTING}, now=d.clock(),
                    detail=type(error).__name__, inputs_expire_at=self.inputs_expire_at(),
                    error_code="submission_unknown",
                    error_message=SUBMISSION_UNKNOWN_MESSAGE.stored(),
                )
            except StaleTransition:
                return await self._adopted_meanwhile(job.id, None), False
            await self._report_outcome_unknown(job)
            return job, False
        except EvolinkError as error:
            log.warning("create refused job=%d error=%r", job.id, error)
            try:
                job = await d.quota.close_job(
                    job.id, LedgerKind.RELEASE, JobState.FAILED, expected={JobState.SUBMITTING},
                    now=d.clock(), detail=type(error).__name__, error_code=type(error).__name__,
                    error_message=explain_submit_error(error).stored(),
                    inputs_expire_at=self.inputs_expire_at(),
                )
            except StaleTransition:
                return await self._adopted_meanwhile(job.id, None), False
            if not interactive:
                await d.notifier.failed(job)
            return job, False
        now = d.clock()
        estimated = task.task_info.estimated_time if task.task_info else None
        log.info("task created job=%d task=%s estimated=%s", job.id, task.id, estimated)
        # Not due for polling yet: the status message and thread must be recorded first,
        # or a fast provider's result would be delivered before we know where to post it.
        created: JobChanges = {
            "provider_task_id": task.id, "provider_status": str(task.status),
            "progress": task.progress, "estimated_time_s": estimated, "submitted_at": now,
            "next_poll_at": None, **provider_figures(job, task),
        }
        try:
            job = await d.jobs.transition(
                job.id, JobState.SUBMITTED, expected={JobState.SUBMITTING}, now=now, **created
            )
        except StaleTransition:
            return await self._adopted_meanwhile(job.id, task.id), False
        return job, True

    async def _adopted_meanwhile(self, job_id: int, created_task_id: str | None) -> Job:
        """The create's answer came after the job had moved on (its callback adopted the
        task, or a moderator acted): keep what is recorded and say what this answer was."""
        job = await self.deps.jobs.get(job_id)
        assert job is not None
        if created_task_id is None or created_task_id == job.provider_task_id:
            log.info("create answered after the job moved on job=%d state=%s task=%s",
                     job_id, job.state, job.provider_task_id)
        else:
            # Two tasks for one job: the one just created is billed and belongs to no job.
            log.error("create answered task=%s but job=%d (%s) holds task=%s: task=%s is "
                      "orphaned and may be billed", created_task_id, job_id, job.state,
                      job.provider_task_id, created_task_id)
        return job

    async def _start_tracking(self, job: Job) -> Job:
        assert job.submitted_at is not None
        first = job.submitted_at + first_poll_delay(
            job.estimated_time_s, self.config.schedule,
            callbacks=self.callback_url(job) is not None,
        )
        job = await self.deps.jobs.update(job.id, now=self.deps.clock(), next_poll_at=first)
        self.wake_scheduler()
        return job

    def inputs_expire_at(self) -> float:
        """Inputs stay public for a grace period after the provider is done with them."""
        return self.deps.clock() + self.config.input_grace_s
