"""Carrying on with unfinished jobs: this process's after a restart, and a dead process's
whose leases ended (several processes). A create call that may have been sent is never sent
again: such a job's outcome is unknown until its task is found (bot/jobs/adoption.py)."""

from __future__ import annotations

import logging

from bot.jobs.engine import JobEngine
from bot.jobs.messages import (
    SUBMISSION_UNKNOWN_MESSAGE,
    TAKEN_OVER_UNPUBLISHED,
    TAKEN_OVER_UNPUBLISHED_MESSAGE,
)
from storage.models import Job, JobState, LedgerKind
from storage.transitions import StaleTransition

log = logging.getLogger(__name__)

# The states carried on from the job's scratch folder (check, then publish).
_RESUMED_FROM_SCRATCH = frozenset(
    {JobState.RECEIVED, JobState.FETCHING, JobState.RESERVED, JobState.REHOSTED}
)
_UNFINISHED = _RESUMED_FROM_SCRATCH | {
    JobState.SUBMITTING, JobState.SUBMITTED, JobState.DOWNLOADING, JobState.ARCHIVED,
}


class Recovery:
    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine
        self.deps = engine.deps

    async def resume(self) -> int:
        """Pick up every unfinished job after a restart; returns how many were touched."""
        d = self.deps
        now = d.clock()
        # With other processes running, only what this one left behind: theirs is theirs,
        # and a lease this process held is taken over by any process once it ends.
        unfinished = await d.jobs.in_states(
            _UNFINISHED, owned_only=self.engine.config.shared_jobs
        )
        # Nothing downloads yet: what a crashed download left is swept, except the scratch
        # folders of jobs about to be checked or published again.
        await d.store.sweep_incoming(
            keep={job.id for job in unfinished if job.state in _RESUMED_FROM_SCRATCH}
        )
        for job in unfinished:
            log.info("resuming job=%d state=%s", job.id, job.state)
            await self._carry_on(job, now)
        self.engine.wake_scheduler()
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
        self.engine.wake_scheduler()

    async def _release_unpublished(self, job: Job) -> None:
        d = self.deps
        try:
            job = await d.quota.close_job(
                job.id, LedgerKind.RELEASE, JobState.FAILED, expected={JobState.RESERVED},
                now=d.clock(), detail=TAKEN_OVER_UNPUBLISHED, error_code=TAKEN_OVER_UNPUBLISHED,
                error_message=TAKEN_OVER_UNPUBLISHED_MESSAGE.stored(),
                inputs_expire_at=self.engine.inputs_expire_at(),
            )
        except StaleTransition:
            return  # its holder came back and moved it on
        await d.notifier.failed(job)

    async def _carry_on(self, job: Job, now: float) -> None:
        """Continue an unfinished job from its recorded state."""
        d = self.deps
        if job.state in _RESUMED_FROM_SCRATCH:
            self.engine.continue_intake(job)
        elif job.state is JobState.SUBMITTING:
            try:
                job = await d.jobs.become_uncertain(
                    job.id, expected={JobState.SUBMITTING}, now=now,
                    detail="restarted during submission",
                    inputs_expire_at=self.engine.inputs_expire_at(),
                    error_code="submission_unknown",
                    error_message=SUBMISSION_UNKNOWN_MESSAGE.stored(),
                )
            except StaleTransition:
                return  # its callback (served already) adopted the task first
            await self.engine.report_outcome_unknown(job)
        elif job.state is JobState.SUBMITTED:
            if job.status_message_id is None:
                job = await self.engine.announce(job)
            # Nothing runs yet, so any lease left by the previous process is stale.
            await d.jobs.update(job.id, now=now, next_poll_at=now)
        elif job.state is JobState.DOWNLOADING:
            await d.jobs.update(job.id, now=now, next_poll_at=now)
        elif job.state is JobState.ARCHIVED:
            await d.jobs.update(job.id, now=now, next_delivery_at=now)
