"""A hostile prompt reaches the public channel only as plain text."""

from __future__ import annotations

from tests.discord_markup import HIDDEN, HOSTILE_PROMPT, rendered_markup
from tests.e2e.harness import Stack


async def test_a_hostile_prompt_shows_in_the_status_message_as_plain_text(stack: Stack) -> None:
    await stack.start_bot()
    ix = await stack.edit({"prompt": HOSTILE_PROMPT, "video": stack.clip()})
    await stack.emu.wait_for_ack(ix)
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    await stack.emu.wait_for_message(thread, lambda m: bool(m.attachments))
    status = stack.emu.messages(stack.world.channel)[0]
    assert "snow" in status.content and not status.pinged_user_ids
    # Only the requester is mentioned, in the header; the quoted prompt renders nothing.
    header, quoted = status.content.split("\n")[:2]
    assert rendered_markup(header) == [f"<@{stack.world.member.user.id}>"]
    assert quoted.startswith("> snow") and rendered_markup(quoted) == []
    assert HIDDEN.search(status.content) is None
    assert HIDDEN.search(thread.name) is None and thread.name.startswith("Kling #")
