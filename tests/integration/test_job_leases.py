"""Job leases shared by several processes on one database: who holds a job, for how long,
and who takes it over (storage/jobs.py). Each process is a `JobRepository` with its name."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from storage.database import POSTGRESQL, Database
from storage.jobs import JobRepository
from storage.leases import Hint
from storage.models import JobState
from storage.rate import RateBuckets
from tests.conftest import DatabaseLocation
from tests.integration.test_storage import NOW, new_job, submitted_job

pytestmark = pytest.mark.both_engines

LEASE_S = 60.0


async def test_a_lease_names_its_holder_and_only_its_end_frees_the_job(db: Database) -> None:
    first, second = JobRepository(db, owner="a"), JobRepository(db, owner="b")
    job_id = await submitted_job(first, NOW)
    [held] = (await first.lease_due(NOW, until=NOW + LEASE_S, limit=10)).polls
    assert (held.leased_by, held.lease_until) == ("a", NOW + LEASE_S)
    early = NOW + LEASE_S - 1
    assert (await second.lease_due(early, until=early + LEASE_S, limit=10)).polls == []
    # "a" died holding it: once the lease ends, "b" takes the job over.
    later = NOW + LEASE_S
    [taken] = (await second.lease_due(later, until=later + LEASE_S, limit=10)).polls
    assert (taken.id, taken.leased_by) == (job_id, "b")


async def test_a_renewed_lease_keeps_the_job_until_the_step_reschedules_it(db: Database) -> None:
    first, second = JobRepository(db, owner="a"), JobRepository(db, owner="b")
    job_id = await submitted_job(first, NOW)
    await first.lease_due(NOW, until=NOW + LEASE_S, limit=10)
    assert await first.renew_lease(job_id, until=NOW + 2 * LEASE_S)
    assert not await second.renew_lease(job_id, until=NOW + 3 * LEASE_S)  # not b's lease
    late = NOW + LEASE_S + 1  # the first lease would have ended here
    assert (await second.lease_due(late, until=late + LEASE_S, limit=10)).polls == []
    # The step ends by rescheduling the job: the lease is over, renewals stop.
    await first.update(job_id, now=late, next_poll_at=late + 5)
    assert not await first.renew_lease(job_id, until=late + LEASE_S)
    job = await first.get(job_id)
    assert job is not None and job.next_poll_at == late + 5


async def test_a_delivery_lease_is_renewed_too(db: Database) -> None:
    first = JobRepository(db, owner="a")
    job_id = await submitted_job(first, NOW)
    await first.lease_due(NOW, until=NOW + LEASE_S, limit=10)  # polled, then archived:
    for step in (JobState.DOWNLOADING, JobState.ARCHIVED):
        await first.transition(job_id, step, expected=None, now=NOW, next_poll_at=None,
                               next_delivery_at=NOW + LEASE_S, lease_until=NOW + LEASE_S)
    assert await first.renew_lease(job_id, until=NOW + 2 * LEASE_S)
    job = await first.get(job_id)
    assert job is not None and job.next_delivery_at == NOW + 2 * LEASE_S


async def test_a_hint_for_a_job_held_elsewhere_leaves_its_lease_alone(db: Database) -> None:
    first, second = JobRepository(db, owner="a"), JobRepository(db, owner="b")
    job_id = await submitted_job(first, NOW)
    await first.lease_due(NOW, until=NOW + LEASE_S, limit=10)
    assert await second.make_due(job_id, now=NOW + 1) is Hint.HELD
    assert (await second.lease_due(NOW + 1, until=NOW + LEASE_S, limit=10)).polls == []
    # The holder itself (its step over) makes it due; so does anyone once the lease ended.
    assert await first.make_due(job_id, now=NOW + 1) is Hint.DUE
    await first.lease_due(NOW + 1, until=NOW + LEASE_S, limit=10)
    assert await second.make_due(job_id, now=NOW + LEASE_S) is Hint.DUE
    assert await second.make_due(job_id + 1, now=NOW) is Hint.NOT_WAITING


async def test_a_restarted_process_resumes_only_the_jobs_it_left(db: Database) -> None:
    first, second = JobRepository(db, owner="a"), JobRepository(db, owner="b")
    mine, theirs = await submitted_job(first, NOW), await submitted_job(second, NOW + 1)
    await second.lease_due(NOW + 1, until=NOW + LEASE_S, limit=10)  # b holds both
    await first.lease_due(NOW + LEASE_S, until=NOW + 2 * LEASE_S, limit=1)  # a takes one back
    left = await first.in_states([JobState.SUBMITTED], owned_only=True)
    assert [job.id for job in left] == [mine]
    assert [job.id for job in await second.in_states([JobState.SUBMITTED], owned_only=True)] == [
        theirs
    ]


async def test_jobs_before_the_provider_are_held_while_their_holder_renews_them(
    db: Database,
) -> None:
    first, second = JobRepository(db, owner="a"), JobRepository(db, owner="b")
    leased = new_job().model_copy(update={"owner": "a", "lease_until": NOW + LEASE_S})
    job = await first.create(leased, now=NOW)

    assert await second.hold_intakes(now=NOW + LEASE_S - 1, until=NOW + 2 * LEASE_S) == []
    assert await first.hold_intakes(now=NOW + LEASE_S - 1, until=NOW + 2 * LEASE_S) == []
    # "a" renewed it: what would have been its end is no end.
    assert await second.hold_intakes(now=NOW + LEASE_S + 1, until=NOW + 3 * LEASE_S) == []
    # "a" died: once the renewed lease ends, "b" takes the job over, and holds it.
    later = NOW + 2 * LEASE_S + 1
    [taken] = await second.hold_intakes(now=later, until=later + LEASE_S)
    assert (taken.id, taken.leased_by, taken.lease_until) == (job.id, "b", later + LEASE_S)
    assert await first.hold_intakes(now=later, until=later + LEASE_S) == []


async def test_an_orphan_is_taken_over_by_one_process_of_several_at_once(db: Database) -> None:
    dead = JobRepository(db, owner="dead")
    orphans = [
        (await dead.create(
            new_job(user_id=n).model_copy(update={"owner": "dead", "lease_until": NOW}), now=NOW
        )).id
        for n in range(6)
    ]
    survivors = [JobRepository(db, owner=f"s{n}") for n in range(3)]

    taken = await asyncio.gather(
        *(s.hold_intakes(now=NOW + 1, until=NOW + LEASE_S) for s in survivors)
    )

    ids = sorted(job.id for jobs in taken for job in jobs)
    assert ids == orphans  # each once, whoever got it


async def test_a_notice_reaches_every_listening_process(db: Database) -> None:
    if db.dialect != POSTGRESQL:
        pytest.skip("SQLite serves one process: nothing to notify")
    heard: asyncio.Queue[str] = asyncio.Queue()
    async with db.listen("kling_test_notice", heard.put_nowait):
        await db.notify("kling_test_notice", "42")
        assert await heard.get() == "42"


async def test_a_dropped_listening_connection_is_opened_again_and_hears_on(
    db: Database, database_location: DatabaseLocation
) -> None:
    if db.dialect != POSTGRESQL:
        pytest.skip("SQLite serves one process: nothing to notify")
    channel = f"kling_test_{uuid.uuid4().hex}"  # names this test's listener on the server
    heard: asyncio.Queue[str] = asyncio.Queue()
    reconnected = asyncio.Event()
    async with db.listen(channel, heard.put_nowait, on_reconnect=reconnected.set):
        admin = await asyncpg.connect(str(database_location.target))
        try:  # what a server restart or a broken network does to the connection
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query LIKE $1", f"LISTEN%{channel}%",
            )
        finally:
            await admin.close()
        assert ended == 1
        await asyncio.wait_for(reconnected.wait(), 10)
        await db.notify(channel, "42")
        assert await asyncio.wait_for(heard.get(), 10) == "42"


async def test_processes_share_one_provider_rate(database_location: DatabaseLocation) -> None:
    # Two processes, two connections: together they get the bucket's tokens, no more.
    first, second = await database_location.open(), await database_location.open()
    try:
        buckets = [RateBuckets(first), RateBuckets(second)]
        takes = [
            await buckets[n % 2].take("evolink", now=NOW, per_second=4, capacity=4)
            for n in range(6)
        ]
        assert takes == [0.0] * 4 + [0.25] * 2
        # A quarter of a second later one more token has come, for whichever asks first.
        later = [
            await bucket.take("evolink", now=NOW + 0.25, per_second=4, capacity=4)
            for bucket in buckets
        ]
        assert later == [0.0, 0.25]
    finally:
        await first.close()
        await second.close()
