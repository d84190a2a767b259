from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sandbox.media_samples import make_png
from storage.models import JobState, LedgerKind
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer, ledger

pytestmark = pytest.mark.both_engines  # the whole bot, real discord.py, on PostgreSQL too


async def test_edit_with_video_and_two_images_delivers_the_file_in_a_thread(
    stack: Stack, tmp_path: Path
) -> None:
    bot = await stack.start_bot()
    images = []
    for index in (1, 2):
        path = make_png(tmp_path / f"ref{index}.png", 400, 400)
        images.append(stack.emu.add_attachment(f"ref{index}.png", path, content_type="image/png"))
    ix = await stack.edit(
        {"prompt": "make it snow <@everyone>", "video": stack.clip(), "image1": images[0],
         "image2": images[1]}
    )
    await stack.emu.wait_for_ack(ix)
    assert ix.ack_latency is not None and ix.ack_latency < 3.0
    reply = await stack.emu.wait_for_response(ix)
    assert "started" in reply.content and reply.ephemeral

    thread = await stack.emu.wait_for_thread(stack.world.channel)
    delivered = await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    assert set(delivered.pinged_user_ids) == {stack.world.member.user.id}
    status = stack.emu.messages(stack.world.channel)[0]
    assert "make it snow" in status.content and not status.pinged_user_ids

    assert bot.services is not None
    await bot.services.tracker.idle()  # the post is recorded right after it is made
    [job] = await bot.services.jobs.search(stack.world.guild.id)
    assert job.state is JobState.DELIVERED and job.thread_id == thread.id
    task = await bot.services.client.get_task(job.provider_task_id or "")
    async with bot.services.http.provider.session.get(task.result_url or "") as response:
        served = await response.read()
    sent = delivered.attachments[0].data
    assert hashlib.sha256(sent).digest() == hashlib.sha256(served).digest()
    assert stack.sim.create_attempts == 1


async def test_a_2_s_clip_is_accepted_billed_as_3_s_and_the_member_is_told(stack: Stack) -> None:
    """EVOLINK_API.md §6: the provider bills a clip under 3 s as 3 s; the bot accepts it,
    bills the same and says so before the edit runs."""
    bot = await stack.start_bot()
    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=2.0)})
    reply = await ephemeral_answer(stack, ix)
    assert "started (2.0 s clip, billed as 3 s, this model's minimum)" in reply.content
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    assert bot.services is not None
    await bot.services.tracker.idle()
    [job] = await bot.services.jobs.search(stack.world.guild.id)
    assert job.state is JobState.DELIVERED and job.billed_seconds == 3
    assert stack.sim.ledger.used == job.credits == job.provider_credits == 36
    assert [(e.kind, e.seconds) for e in await ledger(stack)] == [
        (LedgerKind.RESERVE, 3), (LedgerKind.SETTLE, 0)
    ]
