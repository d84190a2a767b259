"""The demo's "cluster" scenario: two bot processes, four shards, one killed with SIGKILL.

It needs PostgreSQL (`DATABASE_URL`, else `KLING_TEST_DATABASE_URL`): the bots work in a
schema of their own there, dropped at the end. The media go to a bucket on moto's S3
server in this process (local media cannot serve two processes: `check-config` refuses it).
"""

from __future__ import annotations

import os

from sandbox.demo.cluster import (
    PROCESS_SHARDS,
    Cluster,
    Place,
    SharedStorage,
    database_refusal,
    fresh_schema,
    loopback_bucket,
    process_of,
)
from sandbox.demo.processes import DemoError
from sandbox.demo.session import Demo
from storage.database import Database
from storage.jobs import JobRepository
from storage.models import JobState, LedgerKind
from storage.quota import QuotaRepository

PROMPT = "make it look like a snowy winter evening"
LEASE_S = 3.0
VICTIM = 0
DATABASE_URL_NAMES = ("DATABASE_URL", "KLING_TEST_DATABASE_URL")


def database_url() -> str | None:
    return next((os.environ[name] for name in DATABASE_URL_NAMES if os.environ.get(name)), None)


async def refusal() -> str | None:
    """Why the scenario cannot run here (None: it can), before anything is started."""
    return await database_refusal(database_url())


async def cluster(demo: Demo) -> None:
    url = database_url()
    assert url is not None  # refusal() said so before the demo began
    async with fresh_schema(url) as schema, loopback_bucket() as bucket:
        storage = SharedStorage(url, schema, bucket)
        await _story(demo, Cluster(demo, storage, lease_s=LEASE_S), storage)


async def _story(demo: Demo, cluster: Cluster, storage: SharedStorage) -> None:
    say = demo.transcript.note
    await demo.sim.default_script(processing_s=100_000.0, estimated_time=400)
    places = await cluster.places(per_shard=1, members=1)
    for place in places:
        demo.transcript.text_channels[place.channel_id] = f"general of server {place.shard + 1}"
        demo.transcript.users[place.member_ids[0]] = f"member{place.shard + 1}"
    say(f"created {len(places)} servers, one on each of the 4 gateway shards "
        "(shard = (server id >> 22) % 4)")
    await cluster.publish_commands()
    say("published the slash commands to every server (python -m bot sync-commands)")
    await cluster.start()
    for index, shards in enumerate(PROCESS_SHARDS):
        child = cluster.bots[index]
        say(f"bot process {index + 1} (pid {child.pid}) runs shards "
            f"{','.join(map(str, shards))}; both share PostgreSQL schema {storage.schema} "
            "and one S3 bucket")
    jobs = {place.shard: await _edit(demo, place) for place in places}
    await cluster.until(lambda: _created(demo, len(places)), "every edit at the provider")
    victim = [f"#{jobs[p.shard]}" for p in places if process_of(p.shard) == VICTIM]
    pid = await cluster.kill(VICTIM)
    say(f"kill -9 bot process {VICTIM + 1} (pid {pid}) while edits {', '.join(victim)} run at "
        "the provider; the survivor polls them when they are due (one the dead process was "
        f"handling is taken over once its lease ends, {LEASE_S:g} s)")
    for task in await demo.sim.tasks():
        await demo.sim.complete(task["id"])
    say("the provider finishes every task")
    for place in places:
        job_id = jobs[place.shard]
        await demo.delivery(job_id, await demo.thread_of(job_id, place.channel_id))
    await _ledger(demo, storage, len(places))


async def _edit(demo: Demo, place: Place) -> int:
    clip = await demo.emu.upload(
        demo.samples.clip.name, demo.samples.clip.read_bytes(), "video/mp4"
    )
    member = place.member_ids[0]
    demo.transcript.line(
        f"[server {place.shard + 1}, shard {place.shard}] member{place.shard + 1} runs /edit "
        f"prompt:{PROMPT!r} video:{demo.samples.clip.name}"
    )
    ix = await demo.emu.slash(
        place.guild_id, place.channel_id, member, "edit",
        {"prompt": PROMPT, "video": str(clip["id"])},
    )
    return demo.job_id(await demo.answer(str(ix["id"]), "the bot's answer to /edit"))


async def _created(demo: Demo, wanted: int) -> int | None:
    created = int((await demo.sim.stats())["create_attempts"])
    return created if created >= wanted else None


async def _ledger(demo: Demo, storage: SharedStorage, edits: int) -> None:
    """Read the shared database: every edit delivered once, reserved then settled."""
    db = await Database.open(storage.database_url, schema=storage.schema, migrate=False)
    try:
        jobs, quota = JobRepository(db), QuotaRepository(db)
        problems = []
        for job in await jobs.in_states(list(JobState)):
            kinds = [entry.kind for entry in await quota.entries_for_job(job.id)]
            demo.transcript.note(
                f"ledger of edit #{job.id}: {' → '.join(k.value for k in kinds)} "
                f"({job.credits or 0:g} credits); {job.state.value} by {job.leased_by}"
            )
            if job.state is not JobState.DELIVERED or kinds != [LedgerKind.RESERVE,
                                                                 LedgerKind.SETTLE]:
                problems.append(f"edit #{job.id} is {job.state.value} with ledger {kinds}")
    finally:
        await db.close()
    created = int((await demo.sim.stats())["create_attempts"])
    if created != edits:
        problems.append(f"{created} provider tasks for {edits} edits")
    if problems:
        raise DemoError("the cluster lost or doubled something: " + "; ".join(problems))
    demo.transcript.note(
        f"checked: {edits} edits, {edits} provider tasks, each delivered once and settled once"
    )
