"""/edit with `start`, through the real discord.py client: a long clip is cut to the model's
maximum before it is rehosted, and the member is told which part is edited and billed."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from storage.models import JobState, LedgerKind, MediaRole
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer, ledger
from tests.media_factory import make_keyframed_mp4

pytestmark = pytest.mark.both_engines


async def test_a_25_s_clip_with_start_5_is_cut_to_10_s_and_billed_10_s(
    stack: Stack, tmp_path: Path
) -> None:
    bot = await stack.start_bot()
    clip = make_keyframed_mp4(tmp_path / "long.mp4", seconds=25, keyframe_every_s=1.0)
    video = stack.emu.add_attachment("long.mp4", clip, content_type="video/mp4")
    ix = await stack.edit({"prompt": "make it snow", "video": video, "start": 5})
    reply = await ephemeral_answer(stack, ix)
    assert "started (editing 0:05–0:15 of your 0:25 clip, billed as 10 s)" in reply.content

    thread = await stack.emu.wait_for_thread(stack.world.channel)
    await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    assert bot.services is not None
    await bot.services.tracker.idle()
    [job] = await bot.services.jobs.search(stack.world.guild.id)
    assert job.state is JobState.DELIVERED and job.billed_seconds == 10
    # The file the bot rehosted (and the simulator fetched and measured) is the cut part.
    [rehosted] = await bot.services.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    with av.open(str(bot.services.store.path_of(rehosted))) as cut:  # type: ignore[attr-defined]
        assert cut.duration == 10 * av.time_base
    assert job.provider_video_duration == 10
    assert stack.sim.ledger.used == job.credits == job.provider_credits == 120
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == [
        (LedgerKind.RESERVE, 10), (LedgerKind.SETTLE, 0)
    ]
