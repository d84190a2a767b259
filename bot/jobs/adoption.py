"""Adopting a provider task whose create call got no usable answer (issue 11; DESIGN.md §4).

A job in SUBMITTING (create in flight) or SUBMISSION_UNKNOWN (its answer was lost) may have
a task at the provider, running and billed. When that task's id turns up, in the provider's
callback on the job's secret path or pasted by a moderator from the provider's dashboard, it
is checked with our own key and adopted: the job becomes SUBMITTED with that task, the member
is told, and the tracker polls, settles, archives and delivers it like any other. An
uncertain job that nothing adopts within a result link's lifetime is settled as a loss.
"""

from __future__ import annotations

import asyncio
import logging

from bot.evolink import (
    RESULT_LINK_LIFETIME_S,
    TASK_ID_PREFIX,
    AccessDenied,
    EvolinkError,
    InvalidRequest,
    NotFound,
    Task,
    is_task_id,
    reported_model_matches,
)
from bot.i18n import N_
from bot.jobs.engine import JobEngine
from bot.jobs.errors import AdoptionRefused
from bot.jobs.messages import OUTCOME_UNCONFIRMED, OUTCOME_UNCONFIRMED_MESSAGE
from storage.models import AuditEntry, Job, JobChanges, JobState, LedgerKind, sources_of
from storage.transitions import StaleTransition, TaskTaken

log = logging.getLogger(__name__)

# The states a task id found later may be attached in: every way into SUBMITTED.
ADOPTABLE_STATES = sources_of(JobState.SUBMITTED)
# An uncertain job is settled as a loss once a result link made when it became uncertain
# would be dead (EVOLINK_API.md §2.1): a task found after that has nothing left to deliver.
ADOPTION_DEADLINE_S = RESULT_LINK_LIFETIME_S
# A task created this long before the job was asked for cannot be its task; the slack
# covers the difference between the provider's clock and ours.
_CLOCK_SLACK_S = 600.0
# The provider waits 10 s for a callback's answer (§5): confirm within that, or ask it to
# send the callback again.
CALLBACK_CHECK_S = 8.0
_SHOWN_CHARS = 80


def _shown(text: str) -> str:
    """Moderator-typed text, safe inside a code span."""
    cleaned = text.replace("`", "'").strip()
    return cleaned if len(cleaned) <= _SHOWN_CHARS else cleaned[: _SHOWN_CHARS - 1] + "…"


class Adoption:
    """Stateless: every decision is guarded in SQLite, so any number may run at once."""

    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine
        self.deps = engine.deps

    async def verify(self, job: Job, task_id: str) -> Task:
        """Ask the provider, with our own key, whether `task_id` can be this job's task.

        What the query confirms (§2.1): the task exists and our key may see it, the model it
        runs, and when it was created. What it cannot: the prompt, the input video and
        images, keep_original_sound; the query response carries none of them, so a task of
        the same model created by our key meanwhile for something else would pass. Task ids
        are therefore only taken from the job's own callback path (its secret was given to
        the provider alone) or from a moderator who read the provider's dashboard, which
        shows the prompt.
        """
        if not is_task_id(task_id):
            raise AdoptionRefused(
                "bad_task_id",
                N_("`{task}` is not an EvoLink task id: those start with `{prefix}`, like "
                   "`{prefix}1757169743-7cvnl5zw`.", task=_shown(task_id), prefix=TASK_ID_PREFIX),
            )
        try:
            task = await self.deps.client.get_task(task_id)
        except NotFound:
            raise AdoptionRefused(
                "unknown_task",
                N_("EvoLink has no task `{task}` for this bot's key (never created, or expired).",
                   task=task_id),
            ) from None
        except (AccessDenied, InvalidRequest) as refusal:
            raise AdoptionRefused(
                "not_ours",
                N_("EvoLink refused to show task `{task}` to this bot's key (HTTP {status}).",
                   task=task_id, status=str(refusal.status)),
            ) from None
        except EvolinkError:
            raise AdoptionRefused(
                "provider_unavailable",
                N_("EvoLink could not be asked about that task right now; try again in a "
                   "minute."),
                retry_later=True,
            ) from None
        if task.id != task_id:
            raise AdoptionRefused(
                "other_task", N_("EvoLink answered about `{answered}`, not `{task}`.",
                                 answered=task.id, task=task_id),
            )
        if not reported_model_matches(task.model, job.model):
            raise AdoptionRefused(
                "model_mismatch",
                N_("Task `{task}` runs `{model}`, but job #{job} asked for `{wanted}`.",
                   task=task_id, model=_shown(task.model or "no model"), job=job.id,
                   wanted=job.model),
            )
        if task.created is not None and task.created < job.created_at - _CLOCK_SLACK_S:
            raise AdoptionRefused(
                "too_old",
                N_("Task `{task}` was created before job #{job} was asked for, so it cannot be "
                   "its task.", task=task_id, job=job.id),
            )
        return task

    async def from_callback(self, job_id: int, task_id: str) -> bool | None:
        """The provider's callback on this job's path named `task_id`.

        None: the job is not waiting for a task id, so the callback is only a hint. False:
        the provider could not be asked to confirm the task (the sender should try again).
        True: handled, the task adopted or refused (a refusal is logged).
        """
        job = await self.deps.jobs.get(job_id)
        if job is None or job.state not in ADOPTABLE_STATES:
            if job is not None and job.provider_task_id not in (None, task_id):
                log.warning("callback job=%d names task=%r, but the job has task=%s",
                            job_id, task_id, job.provider_task_id)
            return None
        try:
            async with asyncio.timeout(CALLBACK_CHECK_S):
                task = await self.verify(job, task_id)
            await self._adopt(job, task, via="callback")
        except TimeoutError:
            log.warning("callback job=%d: the provider did not confirm task=%r in time",
                        job_id, task_id)
            return False
        except AdoptionRefused as refusal:
            log.warning("callback job=%d task=%r not adopted: %s (%s)", job_id, task_id,
                        refusal.code, refusal.reason)
            return not refusal.retry_later
        except StaleTransition:
            return None  # the create's own answer (or a moderator) was first: a hint now
        return True

    async def attach(self, job: Job, task_id: str, *, actor_id: int) -> tuple[Job, AuditEntry]:
        """A moderator adopts `task_id` (from the provider's dashboard) for an uncertain job;
        the audit row commits with the adoption."""
        if job.state not in ADOPTABLE_STATES:
            raise self._not_waiting(job)
        task = await self.verify(job, task_id)
        now = self.deps.clock()
        try:
            adopted, audit = await self.deps.admin.attach_task(
                job.guild_id, job.id, task.id, expected=ADOPTABLE_STATES, actor_id=actor_id,
                now=now, changes=self._changes(task, now),
            )
        except TaskTaken as taken:
            owner = await self.deps.jobs.get(taken.owner_job_id)
            # Another server's job number is not revealed.
            which = (N_("job #{job}", job=owner.id) if owner and owner.guild_id == job.guild_id
                     else N_("another job"))
            raise AdoptionRefused("taken", N_(
                "Task `{task}` already belongs to {which}: one task, one job.", task=task.id,
                which=which,
            )) from None
        except StaleTransition:
            latest = await self.deps.jobs.get(job.id)
            raise self._not_waiting(latest or job) from None
        return await self._after_adoption(adopted), audit

    @staticmethod
    def _not_waiting(job: Job) -> AdoptionRefused:
        if job.state is JobState.SUBMITTING:
            reason = N_("Job #{job} is still waiting for the provider's answer; try again in "
                        "a minute.", job=job.id)
        elif job.provider_task_id is not None:
            reason = N_("Job #{job} is {state} and already has its task (`{task}`).",
                        job=job.id, state=job.state.value, task=job.provider_task_id)
        else:
            reason = N_("Job #{job} is {state}: only an edit whose submission is uncertain "
                        "can be given a task.", job=job.id, state=job.state.value)
        return AdoptionRefused("not_waiting", reason)

    @staticmethod
    def _changes(task: Task, now: float) -> JobChanges:
        # Not due yet: the status message must be recorded before the first poll.
        return JobChanges(
            provider_status=str(task.status), progress=task.progress,
            estimated_time_s=task.task_info.estimated_time, submitted_at=now,
            next_poll_at=None, error_code=None, error_message=None,
        )

    async def _adopt(self, job: Job, task: Task, *, via: str) -> Job:
        now = self.deps.clock()
        try:
            adopted = await self.deps.jobs.adopt(
                job.id, task.id, expected=ADOPTABLE_STATES, now=now, detail=f"adopted:{via}",
                **self._changes(task, now),
            )
        except TaskTaken as taken:
            raise AdoptionRefused("taken", N_(
                "Task `{task}` already belongs to {which}: one task, one job.", task=task.id,
                which=N_("job #{job}", job=taken.owner_job_id),
            )) from None
        return await self._after_adoption(adopted)

    async def _after_adoption(self, job: Job) -> Job:
        """Announce (the uncertain job had no status message), tell, then track it now: a
        callback comes once the task is finished, and one found on the dashboard often is."""
        d = self.deps
        log.warning("task adopted job=%d task=%s", job.id, job.provider_task_id)
        if job.status_message_id is None:
            job = await self.engine.announce(job)
        settings = await d.guilds.settings(job.guild_id)
        try:
            await d.notifier.adopted(job, settings.log_channel_id)
        except Exception:
            log.exception("adoption notice failed job=%d", job.id)
        now = d.clock()
        try:
            job = await d.jobs.update(
                job.id, now=now, expected={JobState.SUBMITTED}, next_poll_at=now
            )
        except StaleTransition:
            return job  # a moderator failed it meanwhile
        self.engine.wake_scheduler()
        return job

    async def settle_overdue(self) -> list[Job]:
        """Settle as a loss every uncertain job whose task did not turn up in time.

        The reservation is settled, never silently refunded: the provider may have billed
        the task. The member's record says the outcome could not be confirmed, and the
        moderators are alerted (they can give the seconds back if the provider's dashboard
        shows nothing was created).
        """
        d = self.deps
        now = d.clock()
        lost: list[Job] = []
        for job in await d.jobs.uncertain_since_before(now - ADOPTION_DEADLINE_S):
            try:
                settled = await d.quota.close_job(
                    job.id, LedgerKind.SETTLE, JobState.FAILED,
                    expected={JobState.SUBMISSION_UNKNOWN}, now=now, detail=OUTCOME_UNCONFIRMED,
                    error_code=OUTCOME_UNCONFIRMED,
                    error_message=OUTCOME_UNCONFIRMED_MESSAGE.stored(),
                    inputs_expire_at=self.engine.inputs_expire_at(),
                )
            except StaleTransition:
                continue  # adopted or failed meanwhile
            log.error("uncertain job settled as a loss job=%d seconds=%s", settled.id,
                      settled.billed_seconds)
            if d.metrics is not None and settled.billed_seconds:
                d.metrics.record_billed_seconds(settled.billed_seconds)
            settings = await d.guilds.settings(settled.guild_id)
            await d.notifier.outcome_lost(settled, settings.log_channel_id)
            lost.append(settled)
        return lost
