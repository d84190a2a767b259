"""Job moderation: listing, re-posting archived results, failing jobs stuck before the
provider, usage reports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.admin.base import AdminBase
from bot.admin.errors import AdminRefused
from bot.admin.models import JobFailed, JobList, Redelivery, Refetch, TaskAttached, UsageReport
from bot.admin.reports import jobs_csv, period_window, report_filename
from bot.admin.texts import job_missing
from bot.admin.usage_chart import ChartWords, daily_usage, render_usage_png
from bot.admin.validation import (
    MAX_JOBS_LISTED,
    check_id,
    clean_reason,
    in_range,
    parse_period,
    parse_state,
)
from bot.i18n import N_, Text, english
from bot.jobs.actions import can_redeliver, can_refetch
from bot.jobs.errors import AdoptionRefused
from storage.admin import JobAlreadyFinished, ProviderTaskRunning, UnknownJob
from storage.models import AuditEntry, Job, JobState, MediaRole
from storage.transitions import StaleTransition

# Display names of the given members, as the front end knows them; those it cannot name are
# left out (the chart then shows their number).
MemberNames = Callable[[Sequence[int]], Awaitable[Mapping[int, str]]]


def provider_task_refusal(job: Job) -> Text:
    """Why `jobs fail` leaves a job the provider holds alone, and what happens to it."""
    if job.state is JobState.SUBMITTING:
        return N_(
            "Job #{job} was not changed: it is being sent to the provider right now. Try again "
            "in a minute; if the provider's answer is lost it becomes submission_unknown, "
            "which you can fail.", job=job.id,
        )
    if job.state is JobState.SUBMITTED:
        return N_(
            "Job #{job} was not changed: it is running at the provider (task `{task}`), and "
            "the provider cannot cancel it. The bot keeps tracking it and delivers it if it "
            "completes; if the provider fails it, it is refunded automatically.",
            job=job.id, task=job.provider_task_id or "",
        )
    doing = (N_("fetching") if job.state is JobState.DOWNLOADING else N_("posting"))
    return N_(
        "Job #{job} was not changed: the provider has completed it and billed it, and the bot "
        "is {doing} the result. If posting gives up, /kling-admin jobs redeliver posts it "
        "again; to give the member seconds anyway, use /kling-admin user grant.",
        job=job.id, doing=doing,
    )


class JobAdmin(AdminBase):
    async def jobs_list(
        self,
        guild_id: int,
        *,
        state: str | None = None,
        user_id: int | None = None,
        limit: int = 20,
    ) -> JobList:
        """Newest first, optionally one state and/or one member."""
        parsed = parse_state(state)
        if user_id is not None:
            check_id("member", user_id)
        in_range("limit", limit, MAX_JOBS_LISTED, low=1)
        jobs = await self._jobs.search(guild_id, state=parsed, user_id=user_id, limit=limit)
        return JobList(jobs=jobs, state=parsed.value if parsed else None, user_id=user_id)

    async def jobs_redeliver(self, guild_id: int, actor_id: int, job_id: int) -> Redelivery:
        """Queue a finished job's live archived result to be posted again, and audit it."""
        job = await self._job_in_guild(guild_id, job_id)
        if not job.state.is_terminal:
            raise AdminRefused(N_(
                "Job #{job} is not finished ({state}); the bot delivers it when it is.",
                job=job_id, state=job.state.value,
            ))
        if not can_redeliver(job):
            raise AdminRefused(N_(
                "Job #{job} failed before it had a video to post ({code}).", job=job_id,
                code=job.error_code or "",
            ))
        now = self._clock()
        results = await self._media.for_job(job_id, MediaRole.RESULT)
        live = [m for m in results if m.expires_at is None or m.expires_at > now]
        if not live:
            raise AdminRefused(
                N_("Job #{job} has no archived result to re-post.", job=job_id)
            )
        queued, audit = await self._queue_audited(
            job, self._actions.redeliver,
            N_("Job #{job} is already being posted.", job=job.id), actor_id=actor_id,
            action="jobs.redeliver", detail={"media_id": live[0].id},
        )
        message = N_(
            "Re-posting the result of job #{job} for {member}; it appears in the job's thread "
            "in a moment.", job=job_id, member=f"<@{job.user_id}>",
        )
        return await self._mirrored(
            Redelivery(text=message, audit=audit, job=queued, media=live[0])
        )

    async def jobs_attach(
        self, guild_id: int, actor_id: int, job_id: int, task_id: str
    ) -> TaskAttached:
        """Adopt the provider task a moderator found on the dashboard for an uncertain job."""
        job = await self._job_in_guild(guild_id, job_id)
        try:
            job, audit = await self._actions.attach(job, task_id.strip(), actor_id=actor_id)
        except AdoptionRefused as refusal:
            raise AdminRefused(refusal.text) from None
        message = N_(
            "Job #{job} now follows task `{task}`; {member} was told, and the result is posted "
            "in the job's thread as usual.", job=job_id, task=job.provider_task_id or "",
            member=f"<@{job.user_id}>",
        )
        return await self._mirrored(TaskAttached(text=message, audit=audit, job=job))

    async def jobs_refetch(self, guild_id: int, actor_id: int, job_id: int) -> Refetch:
        """Ask the provider again for a job's result (the tracker archives and posts it if it
        is there), and audit it."""
        job = await self._job_in_guild(guild_id, job_id)
        if not can_refetch(job):
            raise AdminRefused(_why_not_refetchable(job))
        queued, audit = await self._queue_audited(
            job, self._actions.refetch,
            N_("Job #{job} changed meanwhile; try again.", job=job.id), actor_id=actor_id,
            action="jobs.refetch", detail={"task_id": job.provider_task_id,
                                           "state": job.state.value, "error_code": job.error_code},
        )
        message = N_(
            "Asking the provider again about job #{job} (task `{task}`); if the video is "
            "there, it is posted in the job's thread.", job=job_id,
            task=job.provider_task_id or "",
        )
        return await self._mirrored(Refetch(text=message, audit=audit, job=queued))

    async def _queue_audited(
        self,
        job: Job,
        queue: Callable[[Job], Awaitable[Job]],
        busy: Text,
        *,
        actor_id: int,
        action: str,
        detail: dict[str, object],
    ) -> tuple[Job, AuditEntry]:
        """Hand the job back to the tracker through `queue`, then write the audit row."""
        try:
            queued = await queue(job)
        except StaleTransition:
            raise AdminRefused(busy) from None
        audit = await self._admin.record(
            job.guild_id, actor_id=actor_id, action=action, target=f"job:{job.id}",
            detail=detail, now=self._clock(),
        )
        return queued, audit

    async def jobs_fail(
        self, guild_id: int, actor_id: int, job_id: int, reason: str
    ) -> JobFailed:
        """Stop a job the provider does not hold and give the member's seconds back (exactly
        once). A job with a provider task is refused: the provider cannot cancel it."""
        text = clean_reason(reason, required=True)
        assert text is not None
        try:
            failure = await self._actions.fail(guild_id, job_id, reason=text, actor_id=actor_id)
        except UnknownJob:
            raise AdminRefused(job_missing(job_id)) from None
        except JobAlreadyFinished as finished:
            raise AdminRefused(N_(
                "Job #{job} is already finished ({state}).", job=job_id,
                state=finished.job.state.value,
            )) from None
        except ProviderTaskRunning as running:
            raise AdminRefused(provider_task_refusal(running.job)) from None
        message = N_(
            "Job #{job} is stopped and marked failed. {seconds} s went back to {member}.",
            job=job_id, seconds=failure.refunded_seconds, member=f"<@{failure.job.user_id}>",
        ) if failure.refunded_seconds else N_(
            "Job #{job} is stopped and marked failed.", job=job_id
        )
        return await self._mirrored(
            JobFailed(text=message, audit=failure.audit, job=failure.job,
                      refunded_seconds=failure.refunded_seconds)
        )

    async def usage(
        self,
        guild_id: int,
        period: str | None = None,
        *,
        say: Callable[[Text], str] = english,
        member_names: MemberNames | None = None,
    ) -> UsageReport:
        """Leaderboard of billed seconds and credits, every job of the period as CSV, and a
        chart of the seconds spent per day drawn from the same jobs, worded by `say` (the
        moderator's language), its top members named by `member_names` (the front end's
        display names; by number without).

        The chart renders in a thread: it is a fraction of a second of CPU on numbers we
        made (bounded days and series), so a process pool's start-up, matplotlib import
        and pickling would cost more than they isolate; the GIL's switch interval keeps
        the event loop served meanwhile."""
        parsed = parse_period(period)
        since, until = period_window(parsed, self._clock())
        rows = await self._admin.usage(guild_id, since=since, until=until)
        jobs = await self._admin.jobs_between(guild_id, since=since, until=until)
        spent = await self._admin.spent_job_ids(guild_id, since=since, until=until)
        budget = self._guild_limits(await self._guilds.settings(guild_id)).guild_budget.value
        daily = daily_usage(jobs, spent, since=since, until=until, monthly_budget=budget)
        names = await member_names(daily.members) if member_names else {}
        words = ChartWords.for_reader(
            parsed, say, {member: names.get(member) for member in daily.members}
        )
        return UsageReport(
            guild_id=guild_id,
            period=parsed,
            since=since,
            until=until,
            rows=rows,
            job_count=len(jobs),
            total_billed_seconds=sum(row.billed_seconds for row in rows),
            total_credits=sum(row.credits for row in rows),
            csv_filename=report_filename(guild_id, parsed, since, "csv"),
            csv_text=jobs_csv(jobs, spent),
            chart_filename=report_filename(guild_id, parsed, since, "png"),
            chart_png=await asyncio.to_thread(render_usage_png, daily, words),
        )


def _why_not_refetchable(job: Job) -> Text:
    if job.provider_task_id is None:
        return N_("Job #{job} never got a provider task ({state}): nothing to ask.",
                  job=job.id, state=job.state.value)
    if job.state in (JobState.ARCHIVED, JobState.DELIVERED) or can_redeliver(job):
        return N_("Job #{job} already has its video; use `/kling-admin jobs redeliver` to post "
                  "it again.", job=job.id)
    return N_("Job #{job} failed at the provider ({code}): there is no video to fetch.",
              job=job.id, code=job.error_code or "")
