"""The provider's own billing figures for a job, read from each task answer it sends.

The create answer and, when the provider echoes them, the query answers carry
``usage.credits_reserved`` and ``task_info.video_duration`` (EVOLINK_API.md §1.2, §2.1).
They are stored beside ours (`Job.credits`, `Job.billed_seconds`) so the usage CSV and
`jobs list` show both. A reservation may be an estimate until the task ends (the provider
may hold the worst case until it has measured the clip), so a difference is a warning only
once the task has completed: that figure is what it billed.
"""

from __future__ import annotations

import logging

from bot.evolink import Task, TaskStatus
from storage.models import Job, JobChanges

log = logging.getLogger(__name__)

# Our credits are rounded to 4 decimals (ModelSpec.credits_for); anything closer is the same.
_SAME_CREDITS = 1e-3


def credits_differ(ours: float | None, theirs: float | None) -> bool:
    """Both figures known and not the same amount."""
    return ours is not None and theirs is not None and abs(ours - theirs) > _SAME_CREDITS


def provider_figures(job: Job, task: Task) -> JobChanges:
    """The figures `task` reports that the job does not hold yet (a change to store:
    only `provider_credits` and `provider_video_duration`)."""
    changes: JobChanges = {}
    credits, duration = task.credits_reserved, task.video_duration
    if credits is not None and credits != job.provider_credits:
        changes["provider_credits"] = credits
    if duration is not None and duration != job.provider_video_duration:
        changes["provider_video_duration"] = duration
    # The first completed answer (the tracker records `completed_at` with it) is compared
    # even when it repeats a figure stored earlier.
    final = task.status is TaskStatus.COMPLETED
    first_final = final and job.completed_at is None
    known = changes.get("provider_credits", job.provider_credits)
    if (changes or first_final) and credits_differ(job.credits, known):
        log.log(
            logging.WARNING if final else logging.INFO,
            "provider credits differ job=%d task=%s ours=%s provider=%s "
            "our_billed_s=%s provider_video_s=%s status=%s",
            job.id, task.id, job.credits, known, job.billed_seconds,
            changes.get("provider_video_duration", job.provider_video_duration), task.status,
        )
    return changes
