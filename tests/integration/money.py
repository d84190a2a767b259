"""The money check of issue 11, for any scenario against the simulator: every credit the
provider billed is a credit the bot settled, and no task the provider billed was refunded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pytest

from sandbox.evolink_sim import EvolinkSimulator
from storage.models import JobState, LedgerKind

if TYPE_CHECKING:
    from bot.services import Services
    from storage.jobs import JobRepository
    from storage.quota import QuotaRepository


class Books(Protocol):
    """A running bot and the simulator it billed at: the integration harness, the e2e stack."""

    sim: EvolinkSimulator

    @property
    def live(self) -> Services: ...

_RETURNED = {LedgerKind.REFUND, LedgerKind.RELEASE}


@dataclass(frozen=True)
class ProviderTask:
    """What the provider billed for one task: the simulator's own record of it."""

    billed: bool
    credits: float


def provider_tasks(sim: EvolinkSimulator) -> dict[str, ProviderTask]:
    return {
        task_id: ProviderTask(
            billed=task.finalized and task.outcome == "completed", credits=task.credits_reserved
        )
        for task_id, task in sim.tasks.items()
    }


async def assert_money_reconciles(harness: Books, job_ids: Iterable[int] | None = None) -> None:
    """Job by job: the simulator billed the job's task exactly when the bot's ledger settled
    it (and gave nothing back), for the same credits. Without `job_ids` every job is checked,
    and the total must also equal the used credits `GET /v1/credits` reports."""
    services = harness.live
    used = None
    if job_ids is None:
        credits = await services.client.get_credits()
        assert credits.data.token is not None
        used = credits.data.token.used_credits
    await assert_books_balance(
        services.jobs, services.quota, provider_tasks(harness.sim), job_ids, used_credits=used
    )


async def assert_books_balance(
    jobs_table: JobRepository, quota: QuotaRepository, tasks: Mapping[str, ProviderTask],
    job_ids: Iterable[int] | None = None, *, used_credits: float | None = None,
) -> None:
    """The money check on the bot's database and the provider's record of its tasks (in
    this process or read over the simulator's control API); `used_credits`, when given,
    is what the provider says was used in all."""
    if job_ids is None:
        jobs = await jobs_table.in_states(list(JobState))
    else:
        found = [await jobs_table.get(job_id) for job_id in job_ids]
        jobs = [job for job in found if job is not None]
    billed_total = settled_total = unpolled = 0.0
    for job in jobs:
        task = tasks.get(job.provider_task_id or "")
        billed = task is not None and task.billed
        kinds = [entry.kind for entry in await quota.entries_for_job(job.id)]
        settled = LedgerKind.SETTLE in kinds and not _RETURNED & set(kinds)
        if billed and not settled and job.state is JobState.SUBMITTED and not kinds[1:]:
            assert task is not None
            unpolled += task.credits  # finished after the bot's last poll: the
            continue  # next poll settles it
        assert billed == settled, (
            f"job {job.id}: provider billed={billed}, bot settled={settled} (ledger {kinds})"
        )
        if billed:
            assert task is not None
            assert not _RETURNED & set(kinds), f"job {job.id}: a billed task was refunded"
            assert job.credits == pytest.approx(task.credits), (
                f"job {job.id}: bot {job.credits}, provider {task.credits}"
            )
            billed_total += task.credits
            settled_total += job.credits or 0.0
    assert settled_total == pytest.approx(billed_total)
    if used_credits is not None:
        assert used_credits == pytest.approx(billed_total + unpolled)
