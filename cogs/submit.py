"""Shared glue: run an edit request for an interaction and answer it ephemerally."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import discord

from bot.jobs.errors import EditRefused
from bot.jobs.models import EditRequest
from cogs.render import refusal_text
from storage.models import Job, JobState

if TYPE_CHECKING:
    from bot.client import KlingBot
    from bot.services import Services

log = logging.getLogger(__name__)


def services_of(interaction: discord.Interaction) -> Services:
    bot = cast("KlingBot", interaction.client)
    if bot.services is None:
        raise EditRefused("starting", "The bot is still starting; try again in a moment.")
    return bot.services


def role_ids(interaction: discord.Interaction) -> list[int]:
    user = interaction.user
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def parent_channel_id(interaction: discord.Interaction) -> int | None:
    """Inside a thread, channel rules apply to the channel the thread belongs to."""
    channel = interaction.channel
    return channel.parent_id if isinstance(channel, discord.Thread) else None


def is_moderator(interaction: discord.Interaction, moderator_role_id: int | None) -> bool:
    user = interaction.user
    if not isinstance(user, discord.Member):
        return False
    if user.guild_permissions.manage_guild:
        return True
    return moderator_role_id is not None and any(r.id == moderator_role_id for r in user.roles)


def permission_notes(interaction: discord.Interaction) -> list[str]:
    """What the bot cannot do here, said up front; refuses when it could not even post."""
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    can_send = perms.send_messages_in_threads if in_thread else perms.send_messages
    if not can_send:
        needed = "Send Messages in Threads" if in_thread else "Send Messages"
        raise EditRefused(
            "missing_permission",
            f"I can't post in this channel: I'm missing the **{needed}** permission here. "
            "Ask a moderator to grant it, or use another channel. Nothing was charged.",
        )
    notes = []
    if not in_thread and not perms.create_public_threads:
        notes.append(
            "I can't create threads here (missing **Create Public Threads**), so updates "
            "will appear in this channel."
        )
    elif not in_thread and not perms.send_messages_in_threads:
        notes.append(
            "I can't post in threads here (missing **Send Messages in Threads**), so the "
            "result will be posted in this channel."
        )
    if not perms.attach_files:
        notes.append(
            "I can't attach files here (missing **Attach Files**), so the result will be a link."
        )
    return notes


def accepted_text(job: Job, notes: list[str]) -> str:
    where = f"<#{job.thread_id}>" if job.thread_id else f"<#{job.channel_id}>"
    text = f"✅ Edit #{job.id} started (billed as {job.billed_seconds} s). Follow it in {where}."
    return "\n".join([text, *(f"-# {note}" for note in notes)])


async def run_edit(
    interaction: discord.Interaction, request: EditRequest, notes: list[str]
) -> None:
    """The interaction is already deferred (ephemeral); this submits and answers it."""
    try:
        job = await services_of(interaction).engine.submit(request)
    except EditRefused as refusal:
        await interaction.followup.send(refusal_text(refusal), ephemeral=True)
        return
    if job.state in (JobState.FAILED, JobState.REJECTED, JobState.SUBMISSION_UNKNOWN):
        text = f"❌ {job.error_message or 'The edit could not be started.'}"
    else:
        text = accepted_text(job, notes)
    await interaction.followup.send(text, ephemeral=True)
