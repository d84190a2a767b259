"""The create call: sent once per job, and what came of it recorded only while the job is
still SUBMITTING (the provider's callback may have adopted the task first,
bot/jobs/adoption.py, and then the job is left as the adoption made it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.evolink import EditTaskRequest, EvolinkError, SubmissionOutcomeUnknown
from bot.jobs.config import EngineConfig
from bot.jobs.deps import EngineDeps
from bot.jobs.messages import SUBMISSION_UNKNOWN_MESSAGE, explain_submit_error
from bot.jobs.provider_figures import provider_figures
from bot.jobs.scheduling import first_poll_delay
from storage.models import Job, JobChanges, JobState, LedgerKind, MediaRole
from storage.transitions import StaleTransition

log = logging.getLogger(__name__)


@dataclass
class TaskCreation:
    deps: EngineDeps
    config: EngineConfig
    wake_scheduler: Callable[[], None]
    inputs_expire_at: Callable[[], float]
    outcome_unknown: Callable[[Job], Awaitable[None]]  # tell the member and moderators

    async def create(self, job: Job, *, interactive: bool) -> tuple[Job, bool]:
        """Send the create call once; True when this call's answer made the job SUBMITTED
        (the caller then announces and tracks it)."""
        d = self.deps
        inputs = await d.media.for_job(job.id)
        video = next(m for m in inputs if m.role is MediaRole.INPUT_VIDEO)
        images = [m for m in inputs if m.role is MediaRole.INPUT_IMAGE]
        request = EditTaskRequest(
            model=job.model, prompt=job.prompt, video_url=(await d.store.public_link(video)).url,
            image_urls=[(await d.store.public_link(m)).url for m in images],
            keep_original_sound=job.keep_audio,
            callback_url=self.config.callback_url(job.id, job.callback_secret),
        )
        job = await d.jobs.transition(
            job.id, JobState.SUBMITTING, expected={JobState.REHOSTED}, now=d.clock()
        )
        try:
            task = await d.client.create_edit_task(request)
        except SubmissionOutcomeUnknown as error:
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
            await self.outcome_unknown(job)
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

    async def start_tracking(self, job: Job) -> Job:
        """Make a submitted job due for its first poll, as soon as the estimate allows."""
        assert job.submitted_at is not None
        first = job.submitted_at + first_poll_delay(
            job.estimated_time_s, self.config.schedule,
            callbacks=self.config.callback_url(job.id, job.callback_secret) is not None,
        )
        job = await self.deps.jobs.update(job.id, now=self.deps.clock(), next_poll_at=first)
        self.wake_scheduler()
        return job

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
