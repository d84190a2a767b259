"""Two bot processes, one killed mid-flight: nothing lost, nothing doubled (issue 14).

Two real `python -m bot run` processes share one PostgreSQL schema and one S3 bucket
(moto's server on loopback), with `SHARD_COUNT=4`: `SHARD_IDS=0,1` and `2,3`. The Discord
emulator and the EvoLink simulator are child processes too, started by the demo's own
machinery (`sandbox.demo`, `sandbox/demo/cluster.py`). Twenty members of eight servers (two
per shard) run `/edit`; each interaction reaches the process holding its server's shard.
Sixteen clips are attachments, which reach the provider at once; four are links to a host
in this test that holds the download open, so four jobs are still before the provider.

Then the first process is killed with SIGKILL while its jobs run at the provider and two
of its downloads hang. The survivor takes over what the dead one held once its lease
(`JOB_LEASE_SECONDS`) ends, the provider finishes every task, and the test asserts that
every edit was delivered exactly once, the provider was asked for exactly twenty tasks, no
job is left unfinished, and the money check holds (`tests/integration/money.py`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme

from sandbox.demo.cluster import Cluster, Place, SharedStorage, process_of
from sandbox.demo.processes import Children
from sandbox.demo.session import Demo
from storage.database import Database
from storage.jobs import JobRepository
from storage.models import Job, JobState
from storage.quota import QuotaRepository
from tests.integration.engine_harness import FileHost, HeldRequests
from tests.integration.money import ProviderBooks, ProviderTask, assert_books_balance

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(150)]

EDITS = 20
LINKED = frozenset({0, 2, 4, 6})  # one per shard (places are ordered by shard, two each)
LEASE_S = 3.0
VICTIM = 0  # the process holding shards 0 and 1
SURVIVOR_NAME = "shards-2-3"
PROMPT = "make it look like a snowy winter evening"
FLIGHT_TIMEOUT_S = 40.0


@dataclass
class Run:
    demo: Demo
    cluster: Cluster
    files: FileHost
    jobs: JobRepository
    quota: QuotaRepository


@pytest.fixture
async def run(tmp_path: Path, shared_storage: SharedStorage) -> AsyncIterator[Run]:
    # A member's link must be https: the host's certificate is from a throwaway CA that
    # only the bot processes trust (SSL_CERT_FILE).
    ca = trustme.CA()
    ca_file = tmp_path / "links-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    files = FileHost(tmp_path / "files", tls)
    files.root.mkdir()
    await files.start()
    with (tmp_path / "transcript.txt").open("w") as transcript:
        async with aiohttp.ClientSession() as session, Children(tmp_path) as children:
            demo = Demo(
                children=children, session=session, workdir=tmp_path, out_dir=tmp_path / "out",
                out=transcript, started=time.monotonic(),
                bot_env={"SSL_CERT_FILE": str(ca_file)},
            )
            db: Database | None = None
            try:
                await demo.setup()
                cluster = Cluster(demo, shared_storage, lease_s=LEASE_S)
                await cluster.publish_commands()  # before the processes, so their migrations meet
                await cluster.start()
                db = await Database.open(
                    shared_storage.database_url, schema=shared_storage.schema, migrate=False
                )
                yield Run(demo, cluster, files, JobRepository(db), QuotaRepository(db))
            finally:
                if db is not None:
                    await db.close()
                watcher = getattr(demo, "transcript", None)
                if watcher is not None:
                    await watcher.stop()
    await files.stop()


async def _edit(run: Run, number: int, place: Place, member: str) -> None:
    clip = run.demo.samples.clip.read_bytes()
    if number in LINKED:
        name = f"clip-{number}.mp4"
        (run.files.root / name).write_bytes(clip)
        options = {"video_url": run.files.url(name)}
    else:
        uploaded = await run.demo.emu.upload("clip.mp4", clip, "video/mp4")
        options = {"video": str(uploaded["id"])}
    await run.demo.emu.slash(
        place.guild_id, place.channel_id, member, "edit", {"prompt": PROMPT, **options}
    )


async def _jobs_in(run: Run, wanted: dict[JobState, int]) -> list[Job] | None:
    jobs = await run.jobs.in_states(list(JobState))
    counts = {state: sum(job.state is state for job in jobs) for state in wanted}
    return jobs if counts == wanted else None


async def _creates(run: Run, wanted: int) -> int | None:
    created = int((await run.demo.sim.stats())["create_attempts"])
    assert created <= wanted, f"the provider was asked for {created} tasks"
    return created if created == wanted else None


async def _result_posts(run: Run, job: Job) -> int:
    """Messages with the job's video, in its thread and its channel."""
    posts = 0
    for channel in {job.thread_id, job.channel_id} - {None}:
        messages = await run.demo.emu.messages(str(channel))
        posts += sum(
            f"edit #{job.id} is ready" in m["content"] and bool(m["attachments"])
            for m in messages
        )
    return posts


async def test_killing_one_of_two_processes_mid_flight_loses_and_doubles_nothing(
    run: Run,
) -> None:
    demo, cluster = run.demo, run.cluster
    # Every task runs until the test finishes it: the kill surely lands mid-flight.
    await demo.sim.default_script(processing_s=100_000.0, estimated_time=100_000)
    places = await cluster.places(per_shard=2, members=3)
    held = run.files.held = HeldRequests()
    for number in range(EDITS):
        place = places[number % len(places)]
        await _edit(run, number, place, place.member_ids[number // len(places)])
    async with asyncio.timeout(FLIGHT_TIMEOUT_S):
        await held.until_waiting(len(LINKED))
    in_flight = await cluster.until(
        lambda: _jobs_in(run, {JobState.SUBMITTED: EDITS - len(LINKED),
                               JobState.FETCHING: len(LINKED)}),
        "16 edits at the provider and 4 downloading", FLIGHT_TIMEOUT_S,
    )
    victims_shards = {p.guild_id for p in places if process_of(p.shard) == VICTIM}
    victims = {job.id: job for job in in_flight if str(job.guild_id) in victims_shards}
    assert {job.state for job in victims.values()} == {JobState.SUBMITTED, JobState.FETCHING}

    await cluster.kill(VICTIM)
    run.files.held = None
    held.release()  # the survivor's downloads go on; the dead one's are fetched again
    await cluster.until(lambda: _creates(run, EDITS), "20 provider tasks", FLIGHT_TIMEOUT_S)
    for task in await demo.sim.tasks():
        await demo.sim.complete(task["id"])
    done = await cluster.until(
        lambda: _jobs_in(run, {JobState.DELIVERED: EDITS}), "every edit delivered",
        FLIGHT_TIMEOUT_S,
    )

    assert [await _result_posts(run, job) for job in done] == [1] * EDITS
    assert {job.leased_by for job in done if job.id in victims} == {SURVIVOR_NAME}
    stats = await demo.sim.stats()
    assert stats["create_attempts"] == EDITS

    async def provider_books() -> ProviderBooks:
        tasks = {
            task["id"]: ProviderTask(
                billed=task["finalized"] and task["outcome"] == "completed",
                credits=task["credits_reserved"],
            )
            for task in await demo.sim.tasks()
        }
        return tasks, (await demo.sim.stats())["credits"]["used"]

    await assert_books_balance(run.jobs, run.quota, provider_books)
