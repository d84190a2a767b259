"""Admission under hostile load (issue 12 items 3–4): racing edits, loops of refused
attempts and floods of slow downloads each meet a limit before anything is downloaded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import pytest

from bot.jobs.errors import EditRefused
from bot.jobs.messages import INTAKES_BUSY
from storage.database import Database
from storage.models import Job, JobSource, JobState, NewJob, UsageSnapshot
from storage.quota import QuotaRepository
from tests.conftest import DatabaseLocation
from tests.integration.engine_harness import Harness, HeldRequests


async def first_finished(
    attempts: Collection[asyncio.Task[Job]], count: int
) -> set[asyncio.Task[Job]]:
    """The first `count` attempts to finish, whichever they are."""
    done: set[asyncio.Task[Job]] = set()
    pending = set(attempts)
    while len(done) < count:
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        done |= finished
    return done


def refusal_of(attempt: asyncio.Task[Job]) -> EditRefused:
    error = attempt.exception()
    assert isinstance(error, EditRefused), f"expected a refusal, got {error!r}"
    return error


async def test_racing_edits_by_one_member_admit_exactly_the_running_edit_limit(
    harness: Harness,
) -> None:
    services = await harness.start(DEFAULT_MAX_CONCURRENT="2")
    video = harness.files.clip()
    held = harness.files.held = HeldRequests()
    attempts = [
        asyncio.create_task(services.engine.submit(harness.request(video))) for _ in range(8)
    ]
    await held.until_waiting(2)
    refused = await first_finished(attempts, 6)

    for attempt in refused:
        refusal = refusal_of(attempt)
        assert refusal.code == "too_many_jobs"
        assert "You already have 2 edit(s) running; the limit is 2" in refusal.reason
    assert len(harness.files.requests) == 2  # the six refused downloaded nothing
    assert len(await services.jobs.search(1)) == 2

    held.release()
    admitted = [await attempt for attempt in attempts if attempt not in refused]
    assert [job.state for job in admitted] == [JobState.SUBMITTED, JobState.SUBMITTED]
    for job in admitted:
        await harness.notifier.wait_for_delivery(job.id)


async def test_a_loop_of_refused_attempts_meets_the_attempt_limit_before_any_download(
    harness: Harness,
) -> None:
    # The bot's clock: stepped by hand while attempts are counted, then running again.
    stepped: float | None = time.time()
    running_from = 0.0
    harness.clock = lambda: stepped if stepped is not None else time.time() + running_from
    services = await harness.start(ATTEMPT_LIMIT="10", ATTEMPT_WINDOW_SECONDS="600")
    too_short = harness.files.clip("short.mp4", seconds=0.5)

    async def attempt(user_id: int = 7) -> EditRefused:
        with pytest.raises(EditRefused) as refused:
            await services.engine.submit(harness.request(too_short, user_id=user_id))
        return refused.value

    codes = []
    for _ in range(20):
        stepped += 1
        codes.append((await attempt()).code)
    assert codes == ["video_too_short"] * 10 + ["attempt_limit"] * 10
    assert len(harness.files.requests) == 10  # from the 11th on, nothing was downloaded
    assert len(await services.jobs.search(1)) == 10
    first_refused = min(job.created_at for job in await services.jobs.search(1))
    limited = await attempt()
    assert limited.retry_at == first_refused + 600
    assert "10 edits refused in the last 10 minutes" in limited.reason
    # Another member is not held back by this one's refusals.
    assert (await attempt(user_id=8)).code == "video_too_short"

    # Once the oldest refusal is older than the window, one more attempt is let through.
    stepped = limited.retry_at
    assert (await attempt()).code == "video_too_short"
    assert len(harness.files.requests) == 12
    assert (await attempt()).code == "attempt_limit"

    # A moderator's reset clears the count, like the usage it hides.
    await services.quota.reset(1, 7, actor_id=9, now=stepped)
    running_from, stepped = stepped + 1 - time.time(), None
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMITTED
    await harness.notifier.wait_for_delivery(job.id)


async def test_beyond_the_intake_cap_and_its_line_a_new_edit_is_refused_at_once(
    harness: Harness,
) -> None:
    services = await harness.start(MAX_CONCURRENT_INTAKES="2", MAX_QUEUED_INTAKES="1")
    video = harness.files.clip()
    held = harness.files.held = HeldRequests()
    attempts = [
        asyncio.create_task(services.engine.submit(harness.request(video, user_id=user)))
        for user in (7, 8)
    ]
    await held.until_waiting(2)
    # The third waits in line (its command keeps "thinking"); nothing is fetched for it yet.
    attempts.append(
        asyncio.create_task(services.engine.submit(harness.request(video, user_id=9)))
    )
    await services.engine.until_intakes_waiting(1)

    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(harness.request(video, user_id=10))
    assert refused.value.code == "intakes_busy" and refused.value.text == INTAKES_BUSY
    assert len(harness.files.requests) == 2
    assert len(await services.jobs.search(1)) == 2  # nothing created for the fourth
    assert await services.quota.guild_used(1, 0.0) == 0  # nor anything charged

    held.release()
    for attempt in attempts:
        job = await attempt
        assert job.state is JobState.SUBMITTED
        await harness.notifier.wait_for_delivery(job.id)
    # The slots were given back: the next edit is checked again.
    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(
            harness.request(harness.files.clip("short.mp4", seconds=0.5), user_id=9)
        )
    assert refused.value.code == "video_too_short"


class Full(Exception):
    """The test's own refusal: storage knows nothing of the bot's."""


@pytest.mark.both_engines
async def test_admit_is_atomic_across_database_connections(
    database_location: DatabaseLocation,
) -> None:
    # Two engines on one database, as two bot processes would have.
    first, second = await database_location.open(), await database_location.open()
    try:
        def at_most_three(snapshot: UsageSnapshot) -> None:
            if snapshot.active_jobs >= 3:
                raise Full()

        async def admit(db: Database, attempt: int) -> Job:
            new = NewJob(
                guild_id=1, channel_id=2, user_id=7, model="kling-o1-video-edit",
                prompt="snow", source=JobSource(video_url="https://cdn.example/clip.mp4"),
                callback_secret=f"secret-{attempt}",
            )
            return await QuotaRepository(db).admit(
                new, day_start=0.0, month_start=0.0, attempts_after=0.0, now=1000.0 + attempt,
                decide=at_most_three,
            )

        outcomes = await asyncio.gather(
            *(admit(first if n % 2 else second, n) for n in range(12)), return_exceptions=True
        )
    finally:
        await first.close()
        await second.close()
    admitted = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    assert len(admitted) == 3
    assert all(isinstance(outcome, (Job, Full)) for outcome in outcomes)
    assert {job.state for job in admitted} == {JobState.RECEIVED}


async def test_edits_resumed_after_a_restart_wait_for_an_intake_slot_instead_of_failing(
    harness: Harness,
) -> None:
    services = await harness.start(MAX_CONCURRENT_INTAKES="1")
    video = harness.files.clip()
    received = [
        await services.jobs.create(
            NewJob(
                guild_id=1, channel_id=2, user_id=user, model="kling-o1-video-edit",
                prompt="snow", source=JobSource(video_url=video), callback_secret=f"c{user}",
            ),
            now=harness.clock(),
        )
        for user in (7, 8)
    ]
    await harness.stop()
    held = harness.files.held = HeldRequests()

    services = await harness.start(MAX_CONCURRENT_INTAKES="1", MAX_QUEUED_INTAKES="0")
    await held.until_waiting(1)
    with pytest.raises(EditRefused) as refused:  # the resumed job holds the only slot
        await services.engine.submit(harness.request(video, user_id=9))
    assert refused.value.code == "intakes_busy"
    assert len(harness.files.requests) == 1

    held.release()
    for job in received:
        await harness.notifier.wait_for_delivery(job.id)
    assert len(harness.files.requests) == 2
