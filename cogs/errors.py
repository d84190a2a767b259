"""What a member sees when something breaks: a private apology with a reference, never the
exception. Shared by the command tree and by the buttons and modals (discord.py sends their
errors elsewhere, so they would otherwise only be logged)."""

from __future__ import annotations

import logging
import uuid

import discord

from bot.i18n import N_, Text
from cogs.i18n import speaker_for

log = logging.getLogger(__name__)


class Refused(Exception):
    """The front end turned the interaction down before asking the engine: nothing started."""

    def __init__(self, text: Text) -> None:
        super().__init__(text.msgid)
        self.text = text


async def answer_privately(interaction: discord.Interaction, text: str) -> None:
    """Reply ephemerally whether or not the interaction was already answered or deferred."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the member about an error (interaction expired?)")


async def apologise(interaction: discord.Interaction, error: BaseException, what: str) -> None:
    """Log `error` under a fresh reference and give the member that reference."""
    reference = uuid.uuid4().hex[:8]
    log.error("interaction failed ref=%s what=%s", reference, what, exc_info=error)
    # The edit may have started before the failure, so no promise about charges: /jobs knows.
    await answer_privately(interaction, speaker_for(interaction)(N_(
        "Something went wrong on our side (reference `{reference}`). Check `/jobs` before "
        "trying again; a moderator can look the reference up.", reference=reference,
    )))
