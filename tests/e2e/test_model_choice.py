"""A choice of model (EVOLINK_MODELS), end to end with the real discord.py client: the member
picks the fast model in /edit and is billed its range, Re-run keeps the job's model, Edit again
lets the member pick, and a model the operator dropped is refused before anything is spent."""

from __future__ import annotations

import copy

from sandbox.discord_emulator.interactions import MODAL
from sandbox.discord_emulator.models import Channel, Message
from sandbox.evolink_sim import TaskScript
from storage.models import Job, LedgerKind
from tests.e2e.harness import Stack, text_input_id
from tests.e2e.test_account import command
from tests.e2e.test_buttons import SLOW_S, finish_new_job, jobs
from tests.e2e.user_view import ephemeral_answer

STANDARD, FAST = "kling-o1-video-edit", "kling-o1-video-edit-fast"
BOTH = f"{STANDARD},{FAST}"


async def test_the_fast_model_is_submitted_and_billed_its_own_range(stack: Stack) -> None:
    await stack.start_bot(EVOLINK_MODELS=BOTH)
    stack.sim.script_next_task(TaskScript(processing_s=SLOW_S))
    # 25 s: beyond the standard model's 10 s, and cut to the fast model's 20 s.
    ix = await stack.edit(
        {"prompt": "make it snow", "video": stack.clip(seconds=25.0), "model": FAST}
    )
    accepted = (await ephemeral_answer(stack, ix)).content
    assert "editing 0:00–0:20 of your 0:25 clip, billed as 20 s" in accepted
    # 20 s × 6.8 credits; 20 × 6.8/12 = 11.33 standard seconds, rounded up.
    assert f"{FAST}: 136 credits, counted as 12 s of your quota." in accepted

    job, _, _ = await finish_new_job(stack, ix)
    task = stack.sim.tasks[job.provider_task_id or ""]
    assert task.body["model"] == FAST and task.spec.name == FAST
    assert (job.model, job.billed_seconds, job.credits) == (FAST, 20, 136)
    assert task.credits_reserved == 136
    assert stack.live is not None
    ledger = await stack.live.quota.entries_for_job(job.id)
    assert [(entry.kind, entry.seconds) for entry in ledger] == [
        (LedgerKind.RESERVE, 12), (LedgerKind.SETTLE, 0)
    ]
    quota = await command(stack, "quota")
    assert "**Today:** 12 s used of 60 s" in quota
    assert f"a {FAST} second counts 6.8/12 of one" in quota


async def _delivered_fast_edit(stack: Stack) -> tuple[Job, Channel, Message]:
    """Both models enabled, and one 8 s edit on the fast model delivered."""
    await stack.start_bot(EVOLINK_MODELS=BOTH)
    stack.sim.script_next_task(TaskScript(processing_s=SLOW_S))
    return await finish_new_job(stack, await stack.edit(
        {"prompt": "make it snow", "video": stack.clip(seconds=8.0), "model": FAST}
    ))


async def test_rerun_keeps_the_jobs_model_and_edit_again_lets_the_member_pick(
    stack: Stack,
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    first, thread, delivered = await _delivered_fast_edit(stack)

    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    rerun_click = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")
    rerun, _, _ = await finish_new_job(stack, rerun_click)
    assert rerun.model == FAST
    assert sim.tasks[rerun.provider_task_id or ""].body["model"] == FAST

    again_click = await emu.click_button(thread, world.member, delivered, f"kling:again:{first.id}")
    await emu.wait_for_ack(again_click)
    assert again_click.ack_type == MODAL and not again_click.errors
    assert again_click.modal is not None
    [select] = [top["component"] for top in again_click.modal["components"]
                if top.get("type") == 18]
    assert [o["value"] for o in select["options"] if o.get("default")] == [FAST]
    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    submit = await emu.submit_modal(
        again_click, {text_input_id(again_click): "now make it night",
                      select["custom_id"]: [STANDARD]}
    )
    again, _, _ = await finish_new_job(stack, submit)
    assert again.model == STANDARD and again.parent_job_id == first.id
    assert sim.tasks[again.provider_task_id or ""].body["model"] == STANDARD
    assert again.credits == 12 * (again.billed_seconds or 0)


async def test_the_message_menus_form_offers_the_models_starting_at_the_default(
    stack: Stack,
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    post = emu.post_user_message(
        world.channel.id, world.member.user.id, "look!", attachments=[stack.clip(seconds=15.0)]
    )
    await stack.start_bot(EVOLINK_MODELS=BOTH)
    menu = await emu.send_message_command(
        world.guild, world.channel, world.member, "Edit with Kling", post
    )
    await emu.wait_for_ack(menu)
    assert menu.ack_type == MODAL and not menu.errors and menu.modal is not None
    [select] = [top["component"] for top in menu.modal["components"] if top.get("type") == 18]
    assert [o["value"] for o in select["options"] if o.get("default")] == [STANDARD]
    sim.script_next_task(TaskScript(processing_s=SLOW_S))
    submit = await emu.submit_modal(
        menu, {text_input_id(menu): "turn it into a cartoon", select["custom_id"]: [FAST]}
    )
    job, _, _ = await finish_new_job(stack, submit)
    # 15 s: the fast model's range, beyond the standard model's 10 s.
    assert (job.model, job.billed_seconds, job.credits) == (FAST, 15, 102)
    assert sim.tasks[job.provider_task_id or ""].body["model"] == FAST


async def test_rerun_of_a_model_the_operator_dropped_is_refused_before_anything_is_spent(
    stack: Stack,
) -> None:
    emu, sim, world = stack.emu, stack.sim, stack.world
    first, thread, delivered = await _delivered_fast_edit(stack)
    await stack.stop_bot()
    await stack.start_bot()  # the standard model alone

    synced = world.app.guild_commands[world.guild.id]
    [edit] = [c for c in synced if c["name"] == "edit"]
    assert "model" not in {option["name"] for option in edit["options"]}
    click = await emu.click_button(thread, world.member, delivered, f"kling:rerun:{first.id}")
    answer = (await ephemeral_answer(stack, click)).content
    assert f"does not offer the model {FAST}" in answer and "nothing was started" in answer
    assert [job.id for job in await jobs(stack)] == [first.id]
    assert sim.create_attempts == 1


async def test_a_pick_from_a_schema_synced_before_the_model_was_dropped_is_refused(
    stack: Stack,
) -> None:
    """Commands re-sync by hand (`sync-commands`): until then Discord still offers the old
    `model` choices. The pick must be refused, never run on the default model instead."""
    world = stack.world
    await stack.start_bot(EVOLINK_MODELS=BOTH)
    stale = copy.deepcopy(world.app.guild_commands[world.guild.id])
    await stack.stop_bot()
    await stack.start_bot()  # the standard model alone
    world.app.guild_commands[world.guild.id] = stale
    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip(), "model": FAST})
    answer = (await ephemeral_answer(stack, ix)).content
    assert f"does not offer the model {FAST}" in answer
    assert await jobs(stack) == [] and stack.sim.create_attempts == 0
