"""Pydantic models of stored rows: what repositories return and accept."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    RECEIVED = "received"  # policy passed, nothing fetched yet
    FETCHING = "fetching"  # attachments being downloaded and probed
    RESERVED = "reserved"  # quota reserved, inputs validated
    REHOSTED = "rehosted"  # inputs published at public URLs
    SUBMITTING = "submitting"  # create call in flight: a crash here is an unknown outcome
    SUBMITTED = "submitted"  # provider task id known, being tracked
    SUBMISSION_UNKNOWN = "submission_unknown"  # create sent, answer lost: waits for its task id
    DOWNLOADING = "downloading"  # provider completed, result being archived
    ARCHIVED = "archived"  # result on our disk, waiting to be delivered
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"  # refused before any provider call

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        """Counts against a member's concurrent-job limit (the one definition of "active")."""
        return self not in TERMINAL_STATES and self is not JobState.SUBMISSION_UNKNOWN


_S = JobState

# The job state machine: state -> the states it may move to. Storage refuses any other
# change of state. Every non-terminal state may go to FAILED: a moderator's `jobs fail`.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        _S.RECEIVED: frozenset({_S.FETCHING, _S.REJECTED, _S.FAILED}),
        _S.FETCHING: frozenset({_S.RESERVED, _S.REJECTED, _S.FAILED}),
        _S.RESERVED: frozenset({_S.REHOSTED, _S.FAILED}),
        _S.REHOSTED: frozenset({_S.SUBMITTING, _S.FAILED}),
        # Provider refused (FAILED, nothing billed) or the answer was lost.
        _S.SUBMITTING: frozenset({_S.SUBMITTED, _S.SUBMISSION_UNKNOWN, _S.FAILED}),
        _S.SUBMITTED: frozenset({_S.DOWNLOADING, _S.FAILED}),
        # Adopted once its task turns up (the provider's callback, a moderator's `jobs
        # attach`); else failed by a moderator, or settled as a loss at the deadline.
        _S.SUBMISSION_UNKNOWN: frozenset({_S.SUBMITTED, _S.FAILED}),
        _S.DOWNLOADING: frozenset({_S.ARCHIVED, _S.FAILED}),
        # Back to DOWNLOADING when a crash left the archive damaged: fetch it again.
        _S.ARCHIVED: frozenset({_S.DELIVERED, _S.DOWNLOADING, _S.FAILED}),
        _S.DELIVERED: frozenset(),
        _S.FAILED: frozenset(),
        _S.REJECTED: frozenset(),
    }
)

TERMINAL_STATES = frozenset(state for state, following in TRANSITIONS.items() if not following)

# The one way back from a finished job: a moderator's re-post (`jobs redeliver`) puts a
# delivered result, or one whose posting gave up, back in the delivery queue. The bot never
# takes these edges on its own, so a finished job stays finished unless a moderator acts.
REPOST_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {_S.DELIVERED: frozenset({_S.ARCHIVED}), _S.FAILED: frozenset({_S.ARCHIVED})}
)
# A moderator's `jobs refetch` asks the provider again for a result the bot gave up on (it
# sent none, or its link could not be downloaded): the job goes back to fetching it.
REFETCH_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {_S.FAILED: frozenset({_S.DOWNLOADING})}
)
# Every edge only a moderator's action takes.
MODERATOR_TRANSITIONS = (REPOST_TRANSITIONS, REFETCH_TRANSITIONS)
ACTIVE_STATES = frozenset(state for state in JobState if state.is_active)
# Polled by the tracker (`next_poll_at`): waiting for the provider, or archiving its result.
TRACKED_STATES = frozenset({_S.SUBMITTED, _S.DOWNLOADING})
# The error code of a job whose task the provider keeps answering 404 for ("not found or
# expired") long enough to hand it to a moderator: the one provider-held job they may stop.
TASK_NOT_FOUND_CODE = "task_not_found"
# Reserved for, or at, the provider and not yet billed: what the provider balance must cover.
UNBILLED_STATES = frozenset(
    {_S.RESERVED, _S.REHOSTED, _S.SUBMITTING, _S.SUBMITTED, _S.SUBMISSION_UNKNOWN}
)
# Worked on by one process before the provider has a task for it: that process holds the
# job's lease (`lease_until`, renewed while it lives); another takes it over once it ends.
INTAKE_STATES = frozenset({_S.RECEIVED, _S.FETCHING, _S.RESERVED, _S.REHOSTED, _S.SUBMITTING})
# Waiting to be posted (`next_delivery_at`).
DELIVERY_STATES = frozenset({_S.ARCHIVED})


def sources_of(state: JobState) -> frozenset[JobState]:
    """The states from which a job may move to `state`."""
    return _SOURCES[state]


_SOURCES: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        target: frozenset(
            source
            for table in (TRANSITIONS, *MODERATOR_TRANSITIONS)
            for source, nexts in table.items()
            if target in nexts
        )
        for target in JobState
    }
)


class MediaRole(StrEnum):
    INPUT_VIDEO = "input_video"
    INPUT_IMAGE = "input_image"
    RESULT = "result"


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ValidatedInput(BaseModel):
    """A downloaded, checked input waiting in the job's scratch folder to be published."""

    role: MediaRole
    position: int
    scratch_name: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str


class ClipCut(BaseModel):
    """The part of the member's clip the bot cut out: what is edited and billed."""

    source_duration_s: float  # the member's whole clip
    start_s: float  # where the cut begins in it (a keyframe near the asked start, or exact)
    duration_s: float  # the cut clip's own length


class JobSource(BaseModel):
    """Where the inputs came from, so a restart can fetch them again, and what was checked."""

    video_url: str
    video_is_user_link: bool = False
    # A file the bot keeps itself: "Edit again" (a result), "Re-run" (the original clip).
    video_media_token: str | None = None
    rules_channel_id: int | None = None  # the parent channel when used inside a thread
    # The member's roles at submit: a resumed job is checked with the same role tier.
    role_ids: list[int] = Field(default_factory=list)
    image_urls: list[str] = Field(default_factory=list)
    # "Re-run": the images as the bot kept them (then `image_urls` is empty).
    image_media_tokens: list[str] = Field(default_factory=list)
    validated: list[ValidatedInput] = Field(default_factory=list)
    # The language of the job's public messages (EditRequest.public_locale).
    public_locale: str = "en-US"
    # The member's `start` (seconds into the clip), kept so a resumed job cuts the same part.
    start_s: float = 0.0
    cut: ClipCut | None = None


class Job(_Row):
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    state: JobState
    model: str
    prompt: str
    keep_audio: bool
    source: JobSource
    parent_job_id: int | None
    duration_s: float | None
    billed_seconds: int | None
    credits: float | None
    provider_task_id: str | None
    provider_status: str | None
    progress: int
    estimated_time_s: float | None
    callback_secret: str
    result_url: str | None
    status_message_id: int | None
    thread_id: int | None
    delivered_message_id: int | None
    error_code: str | None
    error_message: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    completed_at: float | None
    delivered_at: float | None
    ended_at: float | None
    next_poll_at: float | None
    poll_count: int
    download_attempts: int
    delivery_attempts: int
    next_delivery_at: float | None
    # The provider's own figures (usage.credits_reserved, task_info.video_duration), kept
    # beside ours (credits, billed_seconds) so a difference in billing shows.
    provider_credits: float | None = None
    provider_video_duration: float | None = None
    # the provider's answers to polls (migration 0003)
    poll_errors: int  # consecutive failed polls; a good answer resets it
    not_found_since: float | None  # when the current run of 404s began
    # Who holds the job's current step, and until when (migration 0005, storage/jobs.py).
    leased_by: str | None = None
    lease_until: float | None = None


class JobChanges(TypedDict, total=False):
    """The columns a state change or a bookkeeping update may set (besides `state`).

    Repositories take these as typed keyword arguments (`**changes: Unpack[JobChanges]`);
    only the keys given are written.
    """

    # checked inputs and what they cost
    source: JobSource
    duration_s: float | None
    billed_seconds: int | None
    credits: float | None
    # the provider's task
    provider_task_id: str | None
    provider_status: str | None
    progress: int
    estimated_time_s: float | None
    result_url: str | None
    # where the member sees it
    status_message_id: int | None
    thread_id: int | None
    delivered_message_id: int | None
    # milestones
    submitted_at: float | None
    completed_at: float | None
    delivered_at: float | None
    ended_at: float | None
    # schedules and retries
    next_poll_at: float | None
    poll_count: int
    next_delivery_at: float | None
    delivery_attempts: int
    download_attempts: int
    lease_until: float | None
    # the provider's answers to polls (migration 0003)
    poll_errors: int
    not_found_since: float | None
    # why it failed
    error_code: str | None
    error_message: str | None
    # the provider's own billing figures
    provider_credits: float | None
    provider_video_duration: float | None


class NewJob(BaseModel):
    guild_id: int
    channel_id: int
    user_id: int
    model: str
    prompt: str = Field(min_length=1)  # its length limit is the model's; the engine checks it
    keep_audio: bool = True
    source: JobSource
    callback_secret: str
    parent_job_id: int | None = None
    # The process that submits it: after a crash, that process resumes it when it returns,
    # or another takes it over once the lease (until `lease_until`) ends.
    owner: str | None = None
    lease_until: float | None = None


class JobEvent(_Row):
    id: int
    job_id: int
    at: float
    from_state: JobState | None
    to_state: JobState
    detail: str | None


class LedgerKind(StrEnum):
    RESERVE = "reserve"
    SETTLE = "settle"
    REFUND = "refund"
    RELEASE = "release"
    GRANT = "grant"
    RESET = "reset"


class LedgerEntry(_Row):
    id: int
    guild_id: int
    user_id: int
    job_id: int | None
    kind: LedgerKind
    seconds: int
    at: float
    actor_id: int | None
    note: str | None


class GuildSettings(_Row):
    guild_id: int
    daily_seconds: int | None = None
    monthly_seconds: int | None = None
    max_concurrent: int | None = None
    cooldown_s: int | None = None
    monthly_budget: int | None = None
    paused: bool = False
    pause_reason: str | None = None
    moderator_role_id: int | None = None
    log_channel_id: int | None = None


class LimitOverride(_Row):
    """A per-user or per-role limit; None means "not set here"."""

    subject_id: int
    daily_seconds: int | None
    monthly_seconds: int | None


class BlockedUser(_Row):
    guild_id: int
    user_id: int
    reason: str | None
    blocked_by: int
    at: float


class ChannelRule(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class MediaObject(_Row):
    id: int
    token: str
    job_id: int | None
    role: MediaRole
    position: int
    relative_path: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: float
    expires_at: float | None  # the end of its public URL
    deleted_at: float | None
    kept_until: float | None = None  # an input's file outlives its URL until then (Re-run)


class AuditEntry(_Row):
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str | None
    detail: str | None
    at: float


class UsageSnapshot(BaseModel):
    """Everything the quota policy needs, read inside the reserving transaction."""

    used_today: int
    used_month: int
    granted_today: int
    granted_month: int
    guild_used_month: int
    active_jobs: int
    last_submit_at: float | None
    blocked: BlockedUser | None
    guild: GuildSettings
    user_override: LimitOverride | None
    role_overrides: list[LimitOverride]
    channel_rules: dict[int, ChannelRule]
    # When the member's refused attempts (rejected jobs) in the attempt window were made,
    # newest first; empty when the reader asked for no window.
    refused_attempts: list[float] = Field(default_factory=list)


class UsageRow(_Row):
    """One member's spend over a period, for the moderators' leaderboard.

    A job counts as billed once settled and not refunded or released afterwards;
    `pending_seconds` are reserved by jobs still in flight.
    """

    user_id: int
    jobs: int
    billed_jobs: int
    billed_seconds: int
    credits: float
    pending_seconds: int


class JobFailure(_Row):
    """A job a moderator stopped: its final row, what went back to the member, the audit."""

    job: Job
    refunded_seconds: int
    audit: AuditEntry
