"""What members and moderators do with an existing job: re-run it, edit its result again,
re-post it, stop it, or ask what they may still spend. Each is one call from a front end, and
each takes the same path as the bot's own work (submit, the tracker's delivery, the ledger).
"""

from __future__ import annotations

from bot.evolink.spec import EditModel
from bot.i18n import N_
from bot.jobs.adoption import Adoption
from bot.jobs.balance import BalanceFigures
from bot.jobs.engine import JobEngine
from bot.jobs.errors import EditRefused
from bot.jobs.messages import (
    DELIVERY_FAILED,
    INPUTS_GONE,
    JOB_GONE,
    NOT_YOUR_JOB,
    RESULT_GONE,
)
from bot.jobs.models import EditRequest, InputFile, Requester
from bot.jobs.notifier import ModeratorAlert
from bot.jobs.policy import Allowance, Windows, is_moderator
from storage.models import (
    REFETCH_TRANSITIONS,
    REPOST_TRANSITIONS,
    TRACKED_STATES,
    AuditEntry,
    Job,
    JobFailure,
    JobState,
    MediaRole,
)
from storage.transitions import StaleTransition

REDELIVERABLE_STATES = frozenset(REPOST_TRANSITIONS)
# Finished jobs whose billed result the bot gave up on: a refetch asks the provider again.
REFETCHABLE_FAILURES = frozenset({ModeratorAlert.RESULT_MISSING, ModeratorAlert.RESULT_EXPIRED})


def can_redeliver(job: Job) -> bool:
    """A delivered result, or one whose posting gave up; not one that never existed."""
    return job.state is JobState.DELIVERED or (
        job.state is JobState.FAILED and job.error_code == DELIVERY_FAILED
    )


def can_refetch(job: Job) -> bool:
    """Still waiting for the provider (ask now), or failed after it billed without our
    getting the video; not one that failed at the provider or never reached it."""
    if job.provider_task_id is None:
        return False
    return job.state in TRACKED_STATES or (
        job.state in REFETCH_TRANSITIONS and job.error_code in REFETCHABLE_FAILURES
    )


def _follow_up(job: Job, requester: Requester, video: InputFile) -> EditRequest:
    # The buttons sit in the job's thread: the new edit belongs to the channel the first one
    # was asked in (its channel rules apply, and it gets a thread of its own).
    return EditRequest(
        guild_id=job.guild_id, channel_id=job.channel_id,
        rules_channel_id=job.source.rules_channel_id, user_id=requester.user_id,
        role_ids=requester.role_ids, prompt=job.prompt, keep_audio=job.keep_audio,
        video=video, parent_job_id=job.id, public_locale=job.source.public_locale,
        model=EditModel(job.model),
    )


class JobActions:
    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine
        self._deps = engine.deps
        self._adoption = Adoption(engine)

    async def job_for(self, job_id: int, guild_id: int, requester: Requester) -> Job:
        """The job, if it belongs to this server and the requester may act on it."""
        job = await self._deps.jobs.get(job_id)
        if job is None or job.guild_id != guild_id:
            raise EditRefused("job_gone", JOB_GONE)
        if requester.user_id != job.user_id:
            settings = await self._deps.guilds.settings(guild_id)
            if not is_moderator(settings, requester):
                raise EditRefused("not_your_job", NOT_YOUR_JOB)
        return job

    async def rerun(self, job_id: int, guild_id: int, requester: Requester) -> Job:
        """The same clip, images and prompt once more, as a new edit billed to the requester."""
        job = await self.job_for(job_id, guild_id, requester)
        # From the copies the bot kept, never the original links: Discord's expire in a day.
        now = self._deps.clock()
        inputs = [
            kept for media in await self._deps.media.for_job(job.id)
            if media.role in (MediaRole.INPUT_VIDEO, MediaRole.INPUT_IMAGE)
            and (kept := await self._deps.media.kept_by_token(media.token, now=now))
        ]
        videos = [m for m in inputs if m.role is MediaRole.INPUT_VIDEO]
        images = [m for m in inputs if m.role is MediaRole.INPUT_IMAGE]
        if len(videos) != 1 or len(images) != len(job.source.image_urls) + len(
            job.source.image_media_tokens
        ):
            raise EditRefused("inputs_gone", INPUTS_GONE)
        video = InputFile(url="", media_token=videos[0].token)
        return await self.engine.submit(
            _follow_up(job, requester, video).model_copy(update={
                "images": [InputFile(url="", media_token=m.token) for m in images],
            })
        )

    async def edit_again(self, job_id: int, guild_id: int, requester: Requester) -> EditRequest:
        """A new edit of this job's result; the caller fills in the prompt and submits it."""
        job = await self.job_for(job_id, guild_id, requester)
        results = await self._deps.media.for_job(job.id, MediaRole.RESULT)
        if not results:
            raise EditRefused("result_gone", RESULT_GONE)
        return _follow_up(job, requester, InputFile(url="", media_token=results[0].token))

    async def allowance(self, guild_id: int, member: Requester) -> Allowance:
        """What the member may still spend here, as the next submit would see it."""
        now = self._deps.clock()
        windows = Windows.at(now)
        snapshot = await self._deps.quota.snapshot(
            guild_id=guild_id, user_id=member.user_id, role_ids=member.role_ids,
            day_start=windows.day_start, month_start=windows.month_start,
            attempts_after=self.engine.policy.attempts_after(now),
        )
        return self.engine.policy.allowance(snapshot, now)

    async def provider_balance(self) -> BalanceFigures | None:
        """The provider balance as last read, with what it still pays for."""
        balance = self._deps.balance
        reading = balance.reading if balance is not None else None
        if reading is None:
            return None
        in_flight = await self._deps.jobs.unbilled_credits()
        return BalanceFigures(
            remaining=reading.remaining,
            edits_left=reading.edits_left(self.engine.config.spec, in_flight),
            checked_at=reading.at,
            trend=await balance.trend(reading) if balance is not None else [],
        )

    async def redeliver(self, job: Job) -> Job:
        """Queue a finished job's archived result for the tracker to post again.

        The tracker's delivery path retries, falls back and records the new message, exactly
        as for a first delivery. Callers check `can_redeliver` and that the archive lives.
        """
        if not can_redeliver(job):
            raise StaleTransition(job.id, job.state, REDELIVERABLE_STATES)
        now = self._deps.clock()
        queued = await self._deps.jobs.transition(
            job.id, JobState.ARCHIVED, expected=REDELIVERABLE_STATES, now=now,
            detail="redeliver", next_delivery_at=now, delivery_attempts=0,
            error_code=None, error_message=None,
        )
        self.engine.wake_scheduler()
        return queued

    async def refetch(self, job: Job) -> Job:
        """Ask the provider about the job now, through the tracker's own path: a job still
        tracked is made due; one whose result the bot gave up on goes back to fetching it
        (a fresh link from the task, then archive and delivery, with their retries).
        Callers check `can_refetch`."""
        if not can_refetch(job):
            raise StaleTransition(job.id, job.state, TRACKED_STATES)
        now = self._deps.clock()
        if job.state in TRACKED_STATES:
            queued = await self._deps.jobs.update(
                job.id, now=now, expected={job.state}, next_poll_at=now
            )
        else:
            queued = await self._deps.jobs.transition(
                job.id, JobState.DOWNLOADING, expected=frozenset(REFETCH_TRANSITIONS), now=now,
                detail="refetch", result_url=None, download_attempts=0, next_poll_at=now,
                error_code=None, error_message=None,
            )
        self.engine.wake_scheduler()
        return queued

    async def fail(self, guild_id: int, job_id: int, *, reason: str, actor_id: int) -> JobFailure:
        """A moderator stops a job: failed, reservation refunded, audited, member told.

        Only before the provider holds a task for it (raises `ProviderTaskRunning` then,
        nothing changed): the provider cannot cancel a task, and bills it if it completes.
        """
        now = self._deps.clock()
        failure = await self._deps.admin.fail_job(
            guild_id, job_id, reason=reason, actor_id=actor_id, now=now,
            inputs_expire_at=self.engine.inputs_expire_at(),
            error_message=N_("Stopped by a moderator: {reason}", reason=reason).stored(),
        )
        await self._deps.notifier.failed(failure.job)
        return failure

    async def attach(self, job: Job, task_id: str, *, actor_id: int) -> tuple[Job, AuditEntry]:
        """A moderator gives an uncertain job the task id from the provider's dashboard:
        verified like a callback's, adopted, audited; the tracker then delivers it.
        Raises AdoptionRefused (nothing written) with the reason."""
        return await self._adoption.attach(job, task_id, actor_id=actor_id)
