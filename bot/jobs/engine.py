"""JobEngine: one clip and prompt become exactly one provider task, step by persisted step.

DESIGN.md §1: policy → fetch → sniff/probe → reserve → rehost → create → announce, with the
announcement moved in front of the create call: where the status message cannot be posted,
the result could not be delivered either, so nothing is submitted or billed (issue 13).
Each arrow is a recorded state transition, so `Recovery` (bot/jobs/recovery.py) can carry
a job on from wherever it stopped; the create call itself is `TaskCreation`'s.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from functools import partial

from bot.evolink.spec import ModelSpec, spec_for
from bot.i18n import Text
from bot.jobs.admission import IntakeSlots
from bot.jobs.config import EngineConfig
from bot.jobs.creation import TaskCreation
from bot.jobs.deps import EngineDeps
from bot.jobs.errors import EditRefused, EngineStopping
from bot.jobs.intake import precheck_request
from bot.jobs.messages import (
    DISK_LOW,
    INTAKE_FAILED,
    PROVIDER_BALANCE_TOO_LOW,
    RESTARTED_WHILE_CHECKING,
    STATUS_POST_FAILED,
    STATUS_POST_FAILED_MESSAGE,
    model_not_offered,
)
from bot.jobs.models import EditRequest
from bot.jobs.notifier import ArchivedResult
from bot.jobs.policy import QuotaPolicy, Windows
from bot.media.errors import MediaRejected
from storage.models import (
    Job,
    JobSource,
    JobState,
    LedgerKind,
    MediaObject,
    MediaRole,
    NewJob,
)

log = logging.getLogger(__name__)


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
        self._creation = TaskCreation(
            deps, config, wake_scheduler=self.wake_scheduler,
            inputs_expire_at=self.inputs_expire_at, outcome_unknown=self.report_outcome_unknown,
        )

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

    async def report_outcome_unknown(self, job: Job) -> None:
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

    def continue_intake(self, job: Job) -> None:
        """Carry on in the background with a job before the provider (after a restart or a
        takeover), from its recorded state; `stop()` cancels it, its state stays recorded."""
        task = asyncio.create_task(self._continue_intake(job), name=f"resume-{job.id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _continue_intake(self, job: Job) -> None:
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
            # Shutdown mid-fetch: the job stays FETCHING and is fetched again at start.
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
        job, created = await self._creation.create(job, interactive=interactive)
        if created:
            job = await self._creation.start_tracking(job)
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

    def inputs_expire_at(self) -> float:
        """Inputs stay public for a grace period after the provider is done with them."""
        return self.deps.clock() + self.config.input_grace_s
