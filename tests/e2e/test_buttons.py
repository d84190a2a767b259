"""The buttons on a delivered result ("Edit again", "Re-run") and the "Edit with Kling" menu:
the prompt form they share, who may use them, and that they work after a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.models import EditRequest
from sandbox.discord_emulator.interactions import MODAL, InteractionRecord
from sandbox.discord_emulator.models import Attachment, Channel, Message
from sandbox.discord_emulator.permissions import Permissions
from sandbox.evolink_sim import TaskScript
from sandbox.media_samples import make_mp4, make_png
from storage.models import Job, JobState
from tests.e2e.harness import Stack, text_input_id
from tests.e2e.user_view import ephemeral_answer, public_messages

SLOW_S = 100_000.0  # provider seconds: minutes of real time, ended by complete_now


async def jobs(stack: Stack) -> list[Job]:
    assert stack.bot is not None and stack.bot.services is not None
    return sorted(await stack.bot.services.jobs.search(stack.world.guild.id), key=lambda j: j.id)


async def served(stack: Stack, url: str) -> bytes:
    """What the provider gets when it fetches one of the bot's public media URLs."""
    assert stack.bot is not None and stack.bot.services is not None
    async with stack.bot.services.http.provider.session.get(url) as response:
        assert response.status == 200, url
        return await response.read()


async def finish_new_job(stack: Stack, answered: InteractionRecord) -> tuple[Job, Channel, Message]:
    """After `answered` said "started": let the provider finish the newest job, and return
    it with its thread and the delivered message.

    Jobs run on a slow script finished with `complete_now` once they are announced, so the
    tests never depend on the provider racing the status message.
    """
    assert "started" in (await ephemeral_answer(stack, answered)).content
    job = (await jobs(stack))[-1]
    assert job.state is JobState.SUBMITTED and job.thread_id is not None
    stack.sim.complete_now(job.provider_task_id or "")
    thread = stack.emu.channel(job.thread_id)
    message = await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    assert stack.bot is not None and stack.bot.services is not None
    await stack.bot.services.tracker.idle()
    job = next(j for j in await jobs(stack) if j.id == job.id)
    assert job.state is JobState.DELIVERED and job.delivered_message_id == message.id
    # The status message is edited to "Done" after the delivery is recorded, on its own
    # schedule: tests that compare what members see must not catch it half-way.
    status = next(m for m in public_messages(stack) if m.id == job.status_message_id)
    await stack.emu.wait_for(lambda: "**Done**" in status.content, description="Done status")
    return job, thread, message


async def delivered_edit(
    stack: Stack, options: dict[str, Any], result: Path | None = None
) -> tuple[Job, Channel, Message]:
    """Run /edit to delivery; returns the job, its thread and the delivered message."""
    stack.sim.script_next_task(TaskScript(processing_s=SLOW_S, result_path=result))
    return await finish_new_job(stack, await stack.edit(options))


def clip_and_image(stack: Stack, tmp_path: Path) -> tuple[Attachment, Attachment]:
    """A 4 s clip and a reference image, uploaded as a member would attach them."""
    image = stack.emu.add_attachment(
        "ref.png", make_png(tmp_path / "ref.png", 320, 320), content_type="image/png"
    )
    return stack.clip(seconds=4.0), image


async def test_edit_again_after_a_restart_edits_the_previous_result(
    stack: Stack, tmp_path: Path
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    first_result = make_mp4(tmp_path / "first-result.mp4", 5.0, color=(200, 40, 40))
    await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "make it snow", "video": stack.clip()}, result=first_result
    )
    assert delivered.attachments[0].data == first_result.read_bytes()

    await stack.stop_bot()
    await stack.start_bot()
    click = await emu.click_button(thread, world.member, delivered, f"kling:again:{first.id}")
    await emu.wait_for_ack(click)
    assert click.ack_type == MODAL and not click.errors
    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    submit = await emu.submit_modal(click, {text_input_id(click): "now make it night"})
    second, new_thread, result = await finish_new_job(stack, submit)

    assert new_thread.id != thread.id and new_thread.parent_id == world.channel.id
    assert result.pinged_user_ids == [world.member.user.id]
    assert second.parent_job_id == first.id and second.prompt == "now make it night"
    # The provider was asked to edit the first result, fetched from the bot's media route.
    assert sim.create_attempts == 2
    task = sim.tasks[second.provider_task_id or ""]
    assert task.body["prompt"] == "now make it night"
    [video_url] = task.body["video_urls"]
    assert video_url.startswith(f"{stack.public_base_url}/m/")
    assert await served(stack, video_url) == first_result.read_bytes()
    # Nothing was posted twice: still one result in the first thread.
    assert [m.id for m in emu.messages(thread) if m.attachments] == [delivered.id]


async def test_rerun_after_a_restart_repeats_the_prompt_and_inputs(
    stack: Stack, tmp_path: Path
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    clip, image = clip_and_image(stack, tmp_path)
    await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "paint it like Van Gogh", "video": clip, "image1": image,
                "keep_audio": False}
    )
    await stack.stop_bot()
    await stack.start_bot()

    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    click = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")
    second, new_thread, _ = await finish_new_job(stack, click)

    assert new_thread.id != thread.id and new_thread.parent_id == world.channel.id
    assert second.parent_job_id == first.id and second.user_id == world.member.user.id
    old_task = sim.tasks[first.provider_task_id or ""]
    new_task = sim.tasks[second.provider_task_id or ""]
    for field in ("prompt", "keep_original_sound", "model"):
        assert new_task.body.get(field) == old_task.body.get(field), field
    assert new_task.body["prompt"] == "paint it like Van Gogh"
    assert new_task.body["keep_original_sound"] is False
    [video_url] = new_task.body["video_urls"]
    [image_url] = new_task.body["image_urls"]
    assert await served(stack, video_url) == clip.data
    assert await served(stack, image_url) == image.data
    assert sim.create_attempts == 2


async def test_rerun_after_discord_expired_the_original_links_uses_the_bots_own_copies(
    stack: Stack, tmp_path: Path
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    clip, image = clip_and_image(stack, tmp_path)
    await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "paint it like Van Gogh", "video": clip, "image1": image}
    )
    downloads = len(emu.downloads)
    emu.advance(emu.state.cdn.lifetime_s + 60)  # every signed CDN link of the edit is dead

    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    click = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")
    second, _, _ = await finish_new_job(stack, click)

    assert len(emu.downloads) == downloads  # nothing asked of Discord's CDN
    new_task = sim.tasks[second.provider_task_id or ""]
    [video_url] = new_task.body["video_urls"]
    [image_url] = new_task.body["image_urls"]
    assert await served(stack, video_url) == clip.data
    assert await served(stack, image_url) == image.data


async def test_rerun_once_the_inputs_are_no_longer_kept_says_so_plainly(
    stack: Stack,
) -> None:
    emu, world = stack.emu, stack.world
    await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "paint it like Van Gogh", "video": stack.clip()}
    )
    assert stack.bot is not None
    stack.bot.services.engine.deps.clock = lambda: time.time() + 8 * 86400  # past retention

    click = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")

    answer = await ephemeral_answer(stack, click)
    assert "no longer kept" in answer.content and "/edit" in answer.content
    assert len(await jobs(stack)) == 1


async def test_only_the_requester_or_a_moderator_may_press_the_buttons(stack: Stack) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    bob = emu.create_member(world.guild.id, "bob")
    mod = emu.create_member(world.guild.id, "mod", permissions=int(Permissions.MANAGE_GUILD))
    await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "make it snow", "video": stack.clip()}
    )
    before = [(m.id, m.content) for m in public_messages(stack)]

    for custom_id in (f"kling:again:{first.id}", f"kling:rerun:{first.id}"):
        click = await emu.click_button(thread, bob, delivered, custom_id)
        refusal = await ephemeral_answer(stack, click)
        assert "Only the member who asked" in refusal.content
        assert click.modal is None
    assert sim.create_attempts == 1 and len(await jobs(stack)) == 1
    assert [(m.id, m.content) for m in public_messages(stack)] == before

    again = await emu.click_button(thread, mod, delivered, f"kling:again:{first.id}")
    await emu.wait_for_ack(again)
    assert again.ack_type == MODAL

    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    rerun = await emu.click_button(thread, mod, delivered, f"kling:rerun:{first.id}")
    second, _, result = await finish_new_job(stack, rerun)
    assert result.pinged_user_ids == [mod.user.id]
    assert second.user_id == mod.user.id and second.parent_job_id == first.id
    assert sim.create_attempts == 2


async def test_edit_with_kling_on_a_message_with_a_video_asks_for_a_prompt_and_delivers(
    stack: Stack,
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    clip = stack.clip("holiday.mp4")
    post = emu.post_user_message(
        world.channel.id, world.member.user.id, "look!", attachments=[clip]
    )
    await stack.start_bot()

    menu = await emu.send_message_command(
        world.guild, world.channel, world.member, "Edit with Kling", post
    )
    await emu.wait_for_ack(menu)
    assert menu.ack_type == MODAL and not menu.errors
    assert sim.create_attempts == 0  # nothing starts before the prompt is given
    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    submit = await emu.submit_modal(menu, {text_input_id(menu): "turn it into a cartoon"})
    job, thread, result = await finish_new_job(stack, submit)

    assert thread.parent_id == world.channel.id
    assert result.pinged_user_ids == [world.member.user.id]
    assert job.prompt == "turn it into a cartoon" and job.user_id == world.member.user.id
    task = sim.tasks[job.provider_task_id or ""]
    [video_url] = task.body["video_urls"]
    assert await served(stack, video_url) == clip.data
    assert sim.create_attempts == 1


async def test_edit_with_kling_on_a_message_without_a_video_says_there_is_nothing_to_edit(
    stack: Stack, tmp_path: Path
) -> None:
    emu, world = stack.emu, stack.world
    picture = emu.add_attachment(
        "cat.png", make_png(tmp_path / "cat.png", 64, 64), content_type="image/png"
    )
    await stack.start_bot()
    for post in (
        emu.post_user_message(world.channel.id, world.member.user.id, "just words"),
        emu.post_user_message(world.channel.id, world.member.user.id, "", attachments=[picture]),
    ):
        menu = await emu.send_message_command(
            world.guild, world.channel, world.member, "Edit with Kling", post
        )
        answer = await ephemeral_answer(stack, menu)
        assert "no video" in answer.content and menu.modal is None
    assert stack.sim.create_attempts == 0
    assert stack.bot is not None and stack.bot.services is not None
    assert await stack.bot.services.jobs.search(world.guild.id) == []
    assert [m.author.id for m in emu.messages(world.channel)] == [world.member.user.id] * 2


async def test_a_button_or_prompt_that_breaks_still_answers_the_member(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, world = stack.emu, stack.world
    bot = await stack.start_bot()
    first, thread, delivered = await delivered_edit(
        stack, {"prompt": "make it snow", "video": stack.clip()}
    )
    assert bot.services is not None

    async def broken_submit(request: EditRequest) -> Job:
        raise RuntimeError("engine exploded at 0xdeadbeef")

    monkeypatch.setattr(bot.services.engine, "submit", broken_submit)
    rerun = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")
    again = await emu.click_button(thread, world.member, delivered, f"kling:again:{first.id}")
    await emu.wait_for_ack(again)
    submit = await emu.submit_modal(again, {text_input_id(again): "now make it night"})
    for ix in (rerun, submit):
        answer = await ephemeral_answer(stack, ix)
        assert "Something went wrong" in answer.content and "reference" in answer.content
        assert "exploded" not in answer.content and "RuntimeError" not in answer.content
    assert stack.sim.create_attempts == 1
