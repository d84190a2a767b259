"""What an operator's DEBUG logs hold after a real /edit: no interaction token, anywhere."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logging_setup import NOISY_LOGGERS, configure_logging, secrets_of
from tests.e2e.harness import TOKEN, Stack
from tests.e2e.user_view import ephemeral_answer
from tests.integration.engine_harness import API_KEY


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """LOG_LEVEL=DEBUG as `python -m bot run` configures it, written to a buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    stream = io.StringIO()
    configure_logging("DEBUG", False, secrets_of(TOKEN, API_KEY), stream=stream)
    yield stream
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


async def test_debug_logs_of_an_edit_never_contain_its_interaction_token(
    stack: Stack, debug_log: io.StringIO
) -> None:
    emu, world = stack.emu, stack.world
    await stack.start_bot()
    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip()})
    reply = await ephemeral_answer(stack, ix)
    assert "started" in reply.content
    thread = await emu.wait_for_thread(world.channel)
    await emu.wait_for_message(thread, lambda m: bool(m.attachments))

    text = debug_log.getvalue()
    # discord.py really did log the requests and the gateway event that carry the token...
    assert f"/interactions/{ix.id}/" in text and "INTERACTION_CREATE" in text
    assert "/webhooks/" in text
    # ...and the token itself, or any long piece of it, is nowhere.
    assert len(ix.token) >= 32
    assert ix.token not in text and ix.token[:20] not in text
