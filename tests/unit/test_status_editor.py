"""StatusEditor: per-channel pacing, coalescing, turn-taking, and final edits landing last."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import Any

from cogs.status_editor import StatusEditor


def job(job_id: int, channel_id: int, progress: int) -> Any:
    return SimpleNamespace(id=job_id, channel_id=channel_id, progress=progress)


class Recorder:
    def __init__(self) -> None:
        self.edits: list[tuple[int, int, float]] = []  # job id, progress, loop time
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.changed = asyncio.Condition()

    async def edit(self, item: Any) -> None:
        self.in_flight += 1
        self.started.set()
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            self.edits.append((item.id, item.progress, asyncio.get_running_loop().time()))
        finally:
            self.in_flight -= 1
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(lambda: len(self.edits) >= count)


async def test_jobs_in_one_channel_take_turns_one_edit_at_a_time_with_the_latest_text() -> None:
    recorder = Recorder()
    editor = StatusEditor(0.05, recorder.edit)
    for progress in range(1, 11):  # three jobs report progress ten times each, at once
        for job_id in (1, 2, 3):
            editor.submit(job(job_id, 100, progress))
    await recorder.wait_for(3)
    await editor.close()

    assert recorder.most_in_flight == 1
    assert [(job_id, progress) for job_id, progress, _ in recorder.edits[:3]] == [
        (1, 10), (2, 10), (3, 10)
    ]
    times = [at for _, _, at in recorder.edits]
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(times))


async def test_a_new_status_message_pushes_the_next_edit_back() -> None:
    recorder = Recorder()
    editor = StatusEditor(0.2, recorder.edit)
    loop = asyncio.get_running_loop()
    posted_at = loop.time()
    editor.posted(100)
    editor.submit(job(1, 100, 5))
    editor.submit(job(2, 200, 5))  # another channel is not held back
    await recorder.wait_for(2)
    await editor.close()

    at = {job_id: when for job_id, _, when in recorder.edits}
    assert at[2] - posted_at < 0.1
    assert at[1] - posted_at >= 0.19


async def test_settle_waits_for_the_edit_in_flight_so_the_final_edit_lands_last() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    editor = StatusEditor(0.0, recorder.edit)
    editor.submit(job(1, 100, 40))
    await asyncio.wait_for(recorder.started.wait(), 5)  # the 40 % edit is on its way
    editor.submit(job(1, 100, 60))  # queued behind it, must be dropped by settle


    async def final_edit() -> int:
        await editor.settle(1)
        return len(recorder.edits)  # what had landed when the final edit would go out

    final = asyncio.create_task(final_edit())  # scheduled before the edit can resume
    recorder.gate.set()
    assert await asyncio.wait_for(final, 5) == 1
    await editor.close()
    assert [progress for _, progress, _ in recorder.edits] == [40]
