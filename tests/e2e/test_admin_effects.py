"""/kling-admin changes, each seen in the member's following /edit (real bot, loopback).

A moderator (Manage Server) changes something; the member's next /edit answer shows it:
refused with the reason, or accepted and delivered. Every change must also be in the audit.
"""

from __future__ import annotations

import pytest

from tests.e2e.admin_view import (
    actions_by,
    add_moderator,
    admin,
    assert_refused,
    audited,
    edit_delivered,
    try_edit,
)
from tests.e2e.harness import Stack

pytestmark = pytest.mark.stack(rate_limits=False)


async def test_daily_limit_grant_and_reset_decide_the_next_edit(stack: Stack) -> None:
    mod = add_moderator(stack)
    alice = stack.world.member
    await stack.start_bot()

    answer = await admin(stack, mod, "limits set", {"daily_seconds": 2})
    assert "daily 2 s" in answer
    assert_refused(await try_edit(stack), "2 s of editing left today", "(limit 2 s)",
                   "an edit costs at least 3 s")

    answer = await admin(stack, mod, "user grant", {"member": alice, "seconds": 2})
    assert f"<@{alice.user.id}>" in answer and "2 extra s" in answer
    await edit_delivered(stack)  # 2 s limit + 2 s granted pays for the 4 s clip
    assert_refused(await try_edit(stack), "0 s of editing left today", "(limit 2 s)")

    await admin(stack, mod, "user reset", {"member": alice})
    # Usage and the one-off grant are both forgotten: the plain 2 s limit is back.
    assert_refused(await try_edit(stack), "2 s of editing left today", "(limit 2 s)")
    shown = await admin(stack, mod, "user show", {"member": alice})
    assert "Today: 0 s used, 0 s granted, 2 s left of 2 s (server setting)" in shown
    assert "Refused attempts: 0 of 10 in the last 10 minutes" in shown  # quota refusals are free

    await admin(stack, mod, "limits set", {"daily_seconds": 4})
    await edit_delivered(stack)

    assert actions_by(await audited(stack, mod), mod.user.id) == [
        "limits.set", "user.grant", "user.reset", "limits.set"
    ]


async def test_block_refuses_only_that_member_until_unblocked(stack: Stack) -> None:
    mod = add_moderator(stack)
    bob = stack.emu.create_member(stack.world.guild.id, "bob")
    alice = stack.world.member
    await stack.start_bot()

    answer = await admin(
        stack, mod, "user block", {"member": alice, "reason": "spamming  the channel"}
    )
    assert "can no longer use video edits here: spamming the channel" in answer
    assert_refused(await try_edit(stack), "not allowed to use video edits here",
                   "Reason: spamming the channel")
    await edit_delivered(stack, member=bob)
    shown = await admin(stack, mod, "user show", {"member": alice})
    assert f"Blocked by <@{mod.user.id}>: spamming the channel" in shown

    await admin(stack, mod, "user unblock", {"member": alice})
    await edit_delivered(stack)
    assert_refused(await admin(stack, mod, "user unblock", {"member": alice}), "is not blocked")

    assert actions_by(await audited(stack, mod), mod.user.id) == ["user.block", "user.unblock"]


async def test_channel_deny_remove_and_allow_decide_where_edits_work(stack: Stack) -> None:
    mod = add_moderator(stack)
    general = stack.world.channel
    studio = stack.emu.create_text_channel(stack.world.guild.id, "studio")
    await stack.start_bot()

    await admin(stack, mod, "channels deny", {"channel": general})
    assert_refused(await try_edit(stack), "not allowed in this channel")
    await edit_delivered(stack, channel=studio)  # only #general is denied

    await admin(stack, mod, "channels remove", {"channel": general})
    await edit_delivered(stack)

    answer = await admin(stack, mod, "channels allow", {"channel": studio})
    assert "only allowed channels accept them" in answer
    assert_refused(await try_edit(stack), "not allowed in this channel", f"Try <#{studio.id}>")
    await edit_delivered(stack, channel=studio)
    listed = await admin(stack, mod, "channels list")
    assert listed == f"Allowed: <#{studio.id}>\nDenied: none"

    assert actions_by(await audited(stack, mod), mod.user.id) == [
        "channels.deny", "channels.remove", "channels.allow"
    ]


async def test_pause_refuses_everyone_with_the_reason_until_resumed(stack: Stack) -> None:
    mod = add_moderator(stack)
    await stack.start_bot()

    answer = await admin(stack, mod, "pause", {"reason": "maintenance until 18:00"})
    assert "paused on this server: maintenance until 18:00" in answer
    assert_refused(await try_edit(stack), "paused on this server: maintenance until 18:00")
    assert_refused(await try_edit(stack, member=mod), "paused")  # moderators too
    assert "Paused: maintenance until 18:00" in await admin(stack, mod, "limits show")

    assert "running again" in await admin(stack, mod, "resume")
    await edit_delivered(stack)
    assert_refused(await admin(stack, mod, "resume"), "not paused")

    assert actions_by(await audited(stack, mod), mod.user.id) == ["pause", "resume"]


async def test_role_tiers_most_generous_wins_and_a_personal_limit_beats_them(
    stack: Stack,
) -> None:
    emu, guild = stack.emu, stack.world.guild
    mod = add_moderator(stack)
    regular = emu.create_role(guild.id, "regular")
    vip = emu.create_role(guild.id, "vip")
    staff = emu.create_role(guild.id, "staff")  # alice does not have it
    alice = emu.create_member(guild.id, "alice2", roles=[regular.id, vip.id])
    await stack.start_bot()

    await admin(stack, mod, "role limit", {"role": staff, "daily_seconds": 1000})
    await admin(stack, mod, "role limit", {"role": regular, "daily_seconds": 2})
    assert_refused(await try_edit(stack, member=alice), "(limit 2 s)")

    await admin(stack, mod, "role limit", {"role": vip, "daily_seconds": 8})
    await edit_delivered(stack, member=alice)  # vip's 8 s beat regular's 2 s
    shown = await admin(stack, mod, "user show", {"member": alice})
    assert f"Today: 4 s used, 0 s granted, 4 s left of 8 s (role {vip.id})" in shown

    # A personal limit beats every role, even when it is lower.
    await admin(stack, mod, "user limit", {"member": alice, "daily_seconds": 2})
    assert_refused(await try_edit(stack, member=alice), "(limit 2 s)")
    answer = await admin(stack, mod, "user limit", {"member": alice})  # no value: clear it
    assert "no personal limit any more" in answer
    await edit_delivered(stack, member=alice)
    # 8 s used: staff's 1000 s never applied to alice, who lacks the role.
    assert_refused(await try_edit(stack, member=alice), "0 s of editing left", "(limit 8 s)")

    await admin(stack, mod, "role clear", {"role": vip})
    assert_refused(await try_edit(stack, member=alice), "(limit 2 s)")

    assert actions_by(await audited(stack, mod), mod.user.id) == [
        "role.limit", "role.limit", "role.limit", "user.limit", "user.limit.clear",
        "role.limit.clear",
    ]


async def test_channel_rules_cover_the_channels_threads(stack: Stack) -> None:
    mod = add_moderator(stack)
    general = stack.world.channel
    await stack.start_bot()
    thread = (await edit_delivered(stack)).channel_id  # the bot's thread under #general

    # A thread follows its channel's rules (moderators can only name channels).
    await admin(stack, mod, "channels allow", {"channel": general})
    await edit_delivered(stack, channel=thread)
    await admin(stack, mod, "channels remove", {"channel": general})
    await admin(stack, mod, "channels deny", {"channel": general})
    assert_refused(await try_edit(stack, channel=thread), "not allowed in this channel")
