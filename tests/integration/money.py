"""The money check of issue 11, for any scenario against the simulator: every credit the
provider billed is a credit the bot settled, and no task the provider billed was refunded;
and every reservation holds exactly the whole seconds the job's model counts for its billing
(ModelSpec.quota_seconds: the quota rule across prices, in integers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pytest

from bot.evolink.spec import spec_for
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


ProviderBooks = tuple[Mapping[str, ProviderTask], float | None]
"""The provider's record of its tasks, and the credits it says were used in all (if known)."""


async def assert_money_reconciles(harness: Books, job_ids: Iterable[int] | None = None) -> None:
    """Job by job: the simulator billed the job's task exactly when the bot's ledger settled
    it (and gave nothing back), for the same credits. Without `job_ids` every job is checked,
    and the total must also equal the used credits `GET /v1/credits` reports."""
    services, sim = harness.live, harness.sim

    async def snapshot() -> ProviderBooks:  # no await inside: nothing moves while it reads
        used = sim.ledger.credits_json()["data"]["token"]["used_credits"]
        return provider_tasks(sim), (used if job_ids is None else None)

    used = await assert_books_balance(services.jobs, services.quota, snapshot, job_ids)
    if used is not None:  # the same figure through the API the bot reads its balance from
        credits = await services.client.get_credits()
        assert credits.data.token is not None
        assert credits.data.token.used_credits >= used - 1e-9


async def assert_books_balance(
    jobs_table: JobRepository, quota: QuotaRepository,
    provider: Callable[[], Awaitable[ProviderBooks]], job_ids: Iterable[int] | None = None,
) -> float | None:
    """The money check on the bot's database and the provider's record of its tasks (in
    this process or read over the simulator's control API); returns the used credits the
    provider reported, if it did.

    The bot may still be polling while this reads, and the provider finishing tasks: the
    bot's books are read first, then the provider's. A bot settles only what the provider
    billed before, so the later record can only show more billed tasks (each a job the bot
    has not polled since), never fewer."""
    if job_ids is None:
        jobs = await jobs_table.in_states(list(JobState))
    else:
        found = [await jobs_table.get(job_id) for job_id in job_ids]
        jobs = [job for job in found if job is not None]
    ledgers = {job.id: await quota.entries_for_job(job.id) for job in jobs}
    tasks, used_credits = await provider()
    billed_total = settled_total = unpolled = 0.0
    for job in jobs:
        task = tasks.get(job.provider_task_id or "")
        billed = task is not None and task.billed
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
    return used_credits
