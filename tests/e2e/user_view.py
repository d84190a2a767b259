"""What a member can see after an /edit, read back from the emulator and the bot's database.

Shared by the e2e tests; every helper answers a question a user (or the bill) would ask.
"""

from __future__ import annotations

from typing import Any

from sandbox.discord_emulator.interactions import InteractionRecord
from sandbox.discord_emulator.models import Message
from storage.models import LedgerEntry
from tests.e2e.harness import Stack

ACK_DEADLINE_S = 3.0


async def ephemeral_answer(stack: Stack, ix: InteractionRecord, wait_s: float = 10.0) -> Message:
    """The answer that replaced the "thinking…" placeholder, checked to be ephemeral and
    acknowledged within Discord's 3 s window."""
    await stack.emu.wait_for_ack(ix)
    assert ix.ack_latency is not None and ix.ack_latency < ACK_DEADLINE_S, ix.ack_latency
    reply = await stack.emu.wait_for_response(ix, timeout=wait_s)
    assert reply.ephemeral, reply.content
    assert not ix.errors, ix.errors
    return reply


def public_messages(stack: Stack) -> list[Message]:
    """Everything the bot posted where other members can see it: the channel and its threads."""
    channel = stack.world.channel
    found = stack.emu.messages(channel)
    for thread in stack.emu.threads(channel):
        found += stack.emu.messages(thread)
    return found


def all_bot_messages(stack: Stack, *interactions: InteractionRecord) -> list[Message]:
    """Public messages plus every interaction response (ephemeral ones included)."""
    found = public_messages(stack)
    for ix in interactions:
        found += ix.responses
    bot_id = stack.world.app.bot.id
    return [m for m in found if m.author.id == bot_id]


async def ledger(stack: Stack) -> list[LedgerEntry]:
    """Every quota ledger row of the guild's jobs, oldest first."""
    bot = stack.bot
    assert bot is not None and bot.services is not None
    services = bot.services
    entries: list[LedgerEntry] = []
    for job in await services.jobs.search(stack.world.guild.id):
        entries += await services.quota.entries_for_job(job.id)
    return sorted(entries, key=lambda e: e.id)


def pings(message: Message) -> dict[str, Any]:
    return {
        "everyone": message.mention_everyone,
        "roles": list(message.mention_roles),
        "users": sorted(message.pinged_user_ids),
    }
