"""What the demo shows: the happy path, a provider failure, a quota refusal, a restart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sandbox.demo import cluster_story
from sandbox.demo.processes import DemoError
from sandbox.demo.session import Demo

PROMPT = "make it look like a snowy winter evening"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    story: str  # what the header says will happen
    run: Callable[[Demo], Awaitable[None]]
    bot_env: dict[str, str] = field(default_factory=dict)
    # Why it cannot run on this machine (None: it can), asked before anything starts.
    refusal: Callable[[], Awaitable[str | None]] | None = None


async def _deliver(demo: Demo, job_id: int, thread_id: str) -> None:
    delivered = await demo.delivery(job_id, thread_id)
    await demo.save(delivered)
    await demo.finished(job_id)


async def happy(demo: Demo) -> None:
    await demo.start_bot()
    _, answer = await demo.edit(PROMPT)
    job_id = demo.job_id(answer)
    thread_id = await demo.thread_of(job_id)
    await _deliver(demo, job_id, thread_id)


async def failure(demo: Demo) -> None:
    await demo.sim.script_next(
        outcome="failed", error_code="content_policy_violation", processing_s=60.0
    )
    await demo.start_bot()
    demo.transcript.note("the simulator is scripted to fail the next task (content policy)")
    _, answer = await demo.edit(PROMPT)
    job_id = demo.job_id(answer)
    thread_id = await demo.thread_of(job_id)
    await demo.transcript.wait_for(
        lambda s: any(f"edit #{job_id} did not work out" in m["content"]
                      for m in s.messages(thread_id)),
        f"the failure notice for edit #{job_id} in its thread", 40.0,
    )
    await demo.finished(job_id, "Failed")
    ix = await demo.command("quota")
    text = await demo.answer(ix, "the answer to /quota")
    used = re.search(r"Today:\*\* (\d+) s used", text)
    if used is None or int(used.group(1)) != 0:
        raise DemoError(f"the failed edit was not refunded; /quota says: {text!r}")
    demo.transcript.note("checked: the failed edit was refunded (0 s used today)")


async def quota(demo: Demo) -> None:
    await demo.start_bot()
    _, answer = await demo.edit(PROMPT)
    job_id = demo.job_id(answer)
    thread_id = await demo.thread_of(job_id)
    _, refusal = await demo.edit("now make it summer")
    if not refusal.startswith("❌") or "left today" not in refusal:
        raise DemoError(f"the second /edit was not refused for quota; it answered {refusal!r}")
    demo.transcript.note("checked: the second /edit was refused, only the member saw why")
    ix = await demo.command("quota")
    await demo.answer(ix, "the answer to /quota")
    await _deliver(demo, job_id, thread_id)
    threads = demo.transcript.snapshot.threads_of(demo.info.channels["general"])
    if len(threads) != 1:
        raise DemoError(f"expected one edit thread, found {len(threads)}")


async def restart(demo: Demo) -> None:
    # 200 provider seconds: ten real seconds, time to stop and start the bot mid-edit.
    await demo.sim.script_next(processing_s=200.0, estimated_time=200)
    await demo.start_bot()
    _, answer = await demo.edit(PROMPT)
    job_id = demo.job_id(answer)
    thread_id = await demo.thread_of(job_id)
    percent = await demo.progress_at_least(job_id, 15)
    demo.transcript.note(f"stopping the bot with SIGTERM while edit #{job_id} is at {percent}%")
    await demo.stop_bot()
    demo.transcript.note("starting the bot again with the same data directory")
    await demo.start_bot()
    delivered = await demo.delivery(job_id, thread_id)
    await demo.save(delivered)
    await demo.finished(job_id)
    # Stop the bot before counting, so nothing could still be on its way.
    await demo.stop_bot()
    await demo.transcript.refresh()
    snap = demo.transcript.snapshot
    general = demo.info.channels["general"]
    threads = snap.threads_of(general)
    files = [m for m in snap.all_messages() if m["attachments"]]
    statuses = [m for m in snap.messages(general) if m["author"]["id"] == demo.info.bot_user_id]
    tasks = int((await demo.sim.stats())["create_attempts"])
    problems = []
    if [t["id"] for t in threads] != [thread_id]:
        problems.append(f"{len(threads)} threads instead of 1")
    if [m["id"] for m in files] != [delivered["id"]]:
        problems.append(f"{len(files)} messages with a file instead of 1")
    if len(statuses) != 1:
        problems.append(f"{len(statuses)} status messages instead of 1")
    if tasks != 1:
        problems.append(f"{tasks} provider create calls instead of 1")
    if problems:
        raise DemoError("the restart was not clean: " + "; ".join(problems))
    demo.transcript.note(
        "checked: one thread, one status message, one delivered file, one provider task"
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "happy", "an edit from /edit to the delivered file",
            "alice runs /edit with a generated 4 s clip and a reference image; the bot checks "
            "the files, submits the edit, posts a status message with a thread and a progress "
            "bar, and delivers the result in the thread.",
            happy,
        ),
        Scenario(
            "failure", "the provider refuses the content",
            "The simulator fails the task with content_policy_violation: the status message "
            "and the thread explain it in plain words, and /quota shows it cost nothing.",
            failure,
        ),
        Scenario(
            "quota", "a member runs out of daily quota",
            "Members get 6 s a day here (DEFAULT_DAILY_SECONDS=6). The first 4 s clip is "
            "accepted; a second /edit right after is refused, and only alice sees why.",
            quota, {"DEFAULT_DAILY_SECONDS": "6"},
        ),
        Scenario(
            "cluster", "two bot processes, one killed mid-edit",
            "Two bot processes share PostgreSQL and an S3 bucket (moto's server), with four "
            "gateway shards: shards 0,1 in one process, 2,3 in the other. A member of a "
            "server on each shard runs /edit; while the edits run at the provider, the first "
            "process is killed with SIGKILL. The survivor takes its jobs over and delivers "
            "every edit exactly once; the ledger shows each reserved and settled once.",
            cluster_story.cluster, refusal=cluster_story.refusal,
        ),
        Scenario(
            "restart", "the bot restarts in the middle of an edit",
            "While the edit runs, the bot gets SIGTERM and exits; a new bot process resumes "
            "the job from its database and delivers it exactly once, in the same thread.",
            restart,
        ),
    )
}
