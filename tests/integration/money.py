"""The money check of issue 11, for any scenario against the simulator: every credit the
provider billed is a credit the bot settled, and no task the provider billed was refunded;
and every reservation holds exactly the whole seconds the job's model counts for its billing
(ModelSpec.quota_seconds: the quota rule across prices, in integers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import pytest

from bot.evolink.spec import spec_for
from sandbox.evolink_sim import EvolinkSimulator
from storage.models import JobState, LedgerKind

if TYPE_CHECKING:
    from bot.services import Services


class Books(Protocol):
    """A running bot and the simulator it billed at: the integration harness, the e2e stack."""

    sim: EvolinkSimulator

    @property
    def live(self) -> Services: ...

_RETURNED = {LedgerKind.REFUND, LedgerKind.RELEASE}


async def assert_money_reconciles(harness: Books, job_ids: Iterable[int] | None = None) -> None:
    """Job by job: the simulator billed the job's task exactly when the bot's ledger settled
    it (and gave nothing back), for the same credits. Without `job_ids` every job is checked,
    and the total must also equal the used credits `GET /v1/credits` reports.

    The bot keeps polling while this reads, and the simulator keeps finishing tasks: the
    bot's books are read first, then the provider's in one synchronous snapshot. A bot
    settles only what the provider billed before, so a later snapshot can only show more
    billed tasks (each a job the bot has not polled since), never fewer."""
    services, sim = harness.live, harness.sim
    if job_ids is None:
        jobs = await services.jobs.in_states(list(JobState))
    else:
        found = [await services.jobs.get(job_id) for job_id in job_ids]
        jobs = [job for job in found if job is not None]
    ledgers = {job.id: await services.quota.entries_for_job(job.id) for job in jobs}
    # The provider's side, with no await in between: nothing moves while it is read.
    billed_tasks = {task_id: task.credits_reserved for task_id, task in sim.tasks.items()
                    if task.finalized and task.outcome == "completed"}
    used_credits = sim.ledger.credits_json()["data"]["token"]["used_credits"]
    billed_total = settled_total = unpolled = 0.0
    for job in jobs:
        credits_billed = billed_tasks.get(job.provider_task_id or "")
        billed = credits_billed is not None
        entries = ledgers[job.id]
        kinds = [entry.kind for entry in entries]
        for entry in entries:
            if entry.kind is LedgerKind.RESERVE:
                counted = spec_for(job.model).quota_seconds(job.billed_seconds or 0)
                assert entry.seconds == counted, (
                    f"job {job.id}: reserved {entry.seconds} s, its {job.model} billing of "
                    f"{job.billed_seconds} s counts {counted} s"
                )
        settled = LedgerKind.SETTLE in kinds and not _RETURNED & set(kinds)
        if billed and not settled and job.state is JobState.SUBMITTED and not kinds[1:]:
            unpolled += credits_billed or 0.0  # finished after the bot's last poll: the
            continue  # next poll settles it
        assert billed == settled, (
            f"job {job.id}: provider billed={billed}, bot settled={settled} (ledger {kinds})"
        )
        if credits_billed is not None:
            assert not _RETURNED & set(kinds), f"job {job.id}: a billed task was refunded"
            assert job.credits == pytest.approx(credits_billed), (
                f"job {job.id}: bot {job.credits}, provider {credits_billed}"
            )
            billed_total += credits_billed
            settled_total += job.credits or 0.0
    assert settled_total == pytest.approx(billed_total)
    if job_ids is None:
        assert used_credits == pytest.approx(billed_total + unpolled)
        # The same figure through the API the bot reads its balance from.
        credits = await services.client.get_credits()
        assert credits.data.token is not None
        assert credits.data.token.used_credits >= used_credits - 1e-9
