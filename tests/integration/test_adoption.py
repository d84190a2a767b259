"""Uncertain submissions (a proxy 5xx or a dropped connection after the provider created the
task) are never resubmitted: their task is adopted when its id turns up, from the provider's
callback or a moderator's `jobs attach`, else settled as a loss after a day (issue 11).

Every scenario ends with the money check: what the simulator billed is what the bot settled,
and nothing the simulator billed was refunded.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import aiohttp
import pytest

from bot.admin import AdminRefused
from bot.evolink import EditTaskRequest
from bot.jobs.adoption import ADOPTION_DEADLINE_S
from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from storage.models import Job, JobState, LedgerKind
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

MODERATOR = 99
# Real seconds the simulator holds the create's answer after creating the task: ample for
# the task to run and its callback to arrive first.
CREATE_ANSWER_DELAY_S = 4.0
SLOW_TASK = TaskScript(processing_s=100)  # 0.5 s at the harness's time scale

UNCERTAIN_CREATES: dict[str, Callable[[EvolinkSimulator], None]] = {
    "proxy-502-after-create": lambda sim: sim.proxy_fail_next_create(502, created=True),
    "dropped-after-create": lambda sim: sim.drop_after_create_next(),
}


async def assert_money_balances(harness: Harness) -> None:
    """Credits the simulator billed = credits the bot settled; no billed task refunded."""
    services, sim = harness.live, harness.sim
    billed_tasks = {t.id for t in sim.tasks.values() if t.outcome == "completed"}
    settled = 0.0
    for job in await services.jobs.search(1):
        kinds = [entry.kind for entry in await services.quota.entries_for_job(job.id)]
        if LedgerKind.SETTLE in kinds and LedgerKind.REFUND not in kinds:
            settled += job.credits or 0.0
        if job.provider_task_id in billed_tasks:
            assert LedgerKind.REFUND not in kinds, f"job {job.id} refunded a billed task"
    assert settled == pytest.approx(sim.ledger.used)
    assert sim.ledger.used > 0


async def states_into(harness: Harness, job_id: int) -> list[tuple[JobState, str | None]]:
    return [(e.to_state, e.detail) for e in await harness.live.jobs.events(job_id)]


async def uncertain_job(harness: Harness, fault: str = "proxy-502-after-create") -> Job:
    UNCERTAIN_CREATES[fault](harness.sim)
    job = await harness.live.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMISSION_UNKNOWN
    return job


@pytest.mark.parametrize("fault", sorted(UNCERTAIN_CREATES))
async def test_uncertain_create_is_adopted_from_its_callback_and_delivered(
    harness: Harness, fault: str
) -> None:
    harness.callbacks = True
    services = await harness.start()
    harness.sim.script_next_task(SLOW_TASK)
    job = await uncertain_job(harness, fault)
    assert harness.sim.create_attempts == 1 and len(harness.sim.tasks) == 1  # never resent
    [task_id] = harness.sim.tasks

    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()
    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED and done.provider_task_id == task_id
    assert done.error_code is None
    kinds = harness.notifier.kinds(job.id)
    assert kinds[:3] == ["accepted", "unknown", "adopted"]
    assert [kinds.count(k) for k in ("accepted", "adopted", "delivered")] == [1, 1, 1]
    assert (JobState.SUBMITTED, "adopted:callback") in await states_into(harness, job.id)
    entries = await services.quota.entries_for_job(job.id)
    assert [e.kind for e in entries] == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert harness.sim.create_attempts == 1
    await assert_money_balances(harness)


async def test_moderator_attach_adopts_an_uncertain_job_which_is_then_delivered(
    harness: Harness,
) -> None:
    services = await harness.start()  # no callbacks: only the moderator can find the task
    job = await uncertain_job(harness)
    [task_id] = harness.sim.tasks
    await harness.sim.wait_until_settled(task_id)  # finished and billed at the provider

    attached = await services.admin.jobs_attach(job.guild_id, MODERATOR, job.id, f" {task_id}\n")
    assert attached.job.state is JobState.SUBMITTED
    assert attached.job.provider_task_id == task_id and task_id in attached.message
    assert (attached.audit.action, attached.audit.target) == ("jobs.attach", f"job:{job.id}")
    await harness.notifier.wait_for_delivery(job.id)
    await services.tracker.idle()

    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    assert harness.notifier.kinds(job.id)[:3] == ["accepted", "unknown", "adopted"]
    assert (JobState.SUBMITTED, "adopted:moderator") in await states_into(harness, job.id)
    assert harness.sim.create_attempts == 1
    await assert_money_balances(harness)


@pytest.mark.money_open("ends with an uncertain job's task and another model's task unowned")
async def test_attach_refusals_say_why_and_change_nothing(harness: Harness) -> None:
    services = await harness.start()
    delivered = await services.engine.submit(harness.request(harness.files.clip()))
    await harness.notifier.wait_for_delivery(delivered.id)
    delivered = await harness.job(delivered.id)
    job = await uncertain_job(harness)
    [own_task] = set(harness.sim.tasks) - {delivered.provider_task_id}
    # A task of the other model, made by this key (as a dashboard would list it).
    harness.sim.script_next_task(TaskScript(check_inputs=False, video_duration=8))
    fast = await services.client.create_edit_task(EditTaskRequest(
        model="kling-o1-video-edit-fast", prompt="other", video_url=harness.files.url("x.mp4"),
    ))
    audit_before = (await services.admin.audit(job.guild_id)).entries

    refusals = [
        (job.id, "banana", "`banana` is not an EvoLink task id"),
        (job.id, "task-unified-1700000000-zzzzzzzz", "EvoLink has no task"),
        (job.id, fast.id, "runs `kling-o1-video-edit-fast`, but job"),
        (job.id, delivered.provider_task_id, f"already belongs to job #{delivered.id}"),
        (delivered.id, own_task, f"#{delivered.id} is delivered and already has its task"),
        (424242, own_task, "does not exist on this server"),
    ]
    for job_id, task_id, reason in refusals:
        with pytest.raises(AdminRefused, match=re.escape(reason)):
            await services.admin.jobs_attach(job.guild_id, MODERATOR, job_id, task_id or "")

    still = await harness.job(job.id)
    assert still.state is JobState.SUBMISSION_UNKNOWN and still.provider_task_id is None
    assert (await harness.job(delivered.id)).state is JobState.DELIVERED
    assert (await services.admin.audit(job.guild_id)).entries == audit_before
    assert harness.notifier.kinds(job.id) == ["accepted", "unknown"]


async def test_callback_before_the_creates_answer_adopts_once_and_delivers_once(
    harness: Harness,
) -> None:
    harness.callbacks = True
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=10, callback="duplicate"))
    harness.sim.delay_next_create(CREATE_ANSWER_DELAY_S)
    submitting = asyncio.create_task(
        services.engine.submit(harness.request(harness.files.clip()))
    )
    notifier = harness.notifier
    await notifier.wait_for(lambda: any(kind == "delivered" for kind, _ in notifier.events))
    job = await submitting  # the create's answer arrives after the delivery, and changes nothing
    [task_id] = harness.sim.tasks
    await harness.sim.wait_for_callbacks(task_id, 2)
    await services.tracker.idle()

    done = await harness.job(job.id)
    assert job.provider_task_id == done.provider_task_id == task_id
    assert done.state is JobState.DELIVERED
    assert [kind for kind in notifier.kinds(job.id) if kind != "progress"] == [
        "accepted", "adopted", "delivered",
    ]
    into = await states_into(harness, job.id)
    assert [e for e in into if e[0] is JobState.SUBMITTED] == [
        (JobState.SUBMITTED, "adopted:callback")  # the callback came first, and only it
    ]
    assert harness.sim.create_attempts == 1
    await assert_money_balances(harness)


@pytest.mark.money_open("ends with the uncertain job's own task not adopted")
async def test_a_callback_naming_another_jobs_task_adopts_nothing(harness: Harness) -> None:
    harness.callbacks = True
    services = await harness.start()
    other = await services.engine.submit(harness.request(harness.files.clip()))
    await harness.notifier.wait_for_delivery(other.id)
    other = await harness.job(other.id)
    harness.sim.script_next_task(TaskScript(callback="drop"))  # its own callback never comes
    job = await uncertain_job(harness)

    url = f"{harness.public_base_url}/callbacks/evolink/{job.id}/{job.callback_secret}"
    bodies: list[object] = [
        {"id": other.provider_task_id, "status": "completed", "model": job.model},
        {"id": "task-unified-1700000000-zzzzzzzz", "status": "completed"},
        {"id": "../../v1/credits"},
        {"status": "completed"},
        "not even an object",
    ]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(url, json=body) as response:
                assert response.status == 204, body
    await services.tracker.idle()

    still = await harness.job(job.id)
    assert still.state is JobState.SUBMISSION_UNKNOWN and still.provider_task_id is None
    untouched = await harness.job(other.id)
    assert untouched.state is JobState.DELIVERED
    assert untouched.provider_task_id == other.provider_task_id
    assert harness.notifier.kinds(job.id) == ["accepted", "unknown"]
    assert harness.notifier.kinds(other.id).count("delivered") == 1



@pytest.mark.money_open(
    "settled as a loss without its task id: the check pairs bills and jobs by task"
)
async def test_an_uncertain_job_nobody_adopts_is_settled_as_a_loss_after_a_day(
    harness: Harness,
) -> None:
    await harness.start()
    job = await uncertain_job(harness)
    [task_id] = harness.sim.tasks
    await harness.sim.wait_until_settled(task_id)  # billed at the provider; nobody tells us
    await harness.stop()

    harness.clock = lambda: time.time() + ADOPTION_DEADLINE_S - 3600  # an hour early
    services = await harness.start()
    assert await services.tracker.adoption.settle_overdue() == []
    assert (await harness.job(job.id)).state is JobState.SUBMISSION_UNKNOWN
    await harness.stop()

    harness.clock = lambda: time.time() + ADOPTION_DEADLINE_S + 60
    services = await harness.start()  # the tracker's housekeeping runs at start
    await harness.notifier.wait_for_event("lost", job.id)
    lost = await harness.job(job.id)
    assert (lost.state, lost.error_code) == (JobState.FAILED, "outcome_unconfirmed")
    assert "never confirmed" in (lost.error_message or "")
    entries = await services.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, lost.billed_seconds), (LedgerKind.SETTLE, 0),
    ]
    assert harness.notifier.kinds(job.id) == ["accepted", "unknown", "lost"]
    assert harness.sim.create_attempts == 1
    await assert_money_balances(harness)
