"""Shared glue: who is asking, what the bot may do here, and running an edit for them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, cast

import discord

from bot.i18n import N_, Speaker, Text
from bot.jobs.errors import EditRefused
from bot.jobs.messages import billing_note, price_note
from bot.jobs.models import EditRequest, Requester
from cogs.errors import Refused
from cogs.i18n import public_locale, speaker_for
from cogs.render import refusal_text
from storage.models import Job, JobState

if TYPE_CHECKING:
    from bot.services import Services
    from bot.settings import Settings
    from cogs.forms import OpenForms

log = logging.getLogger(__name__)


class _RunningBot(Protocol):
    """What the cogs need of bot.client.KlingBot, without importing it (it imports them)."""

    settings: Settings
    open_forms: OpenForms

    @property
    def services(self) -> Services: ...


def settings_of(client: discord.Client) -> Settings:
    return cast(_RunningBot, client).settings


def forms_of(client: discord.Client) -> OpenForms:
    """The prompt forms the running bot has opened (see cogs.views.OpenForms)."""
    return cast(_RunningBot, client).open_forms


def services_of(client: discord.Client) -> Services:
    """The running services: started before any cog loads or any interaction arrives."""
    return cast(_RunningBot, client).services


def requester(interaction: discord.Interaction) -> Requester:
    user = interaction.user
    if not isinstance(user, discord.Member):
        return Requester(user_id=user.id)
    return Requester(
        user_id=user.id, role_ids=[role.id for role in user.roles],
        manages_guild=user.guild_permissions.manage_guild,
    )


def parent_channel_id(interaction: discord.Interaction) -> int | None:
    """Inside a thread, channel rules apply to the channel the thread belongs to."""
    channel = interaction.channel
    return channel.parent_id if isinstance(channel, discord.Thread) else None


def prompt_of(text: str) -> str:
    """The prompt as the engine takes it (trimmed); a blank one, from the command or the
    form (Discord's minimum length counts spaces), is refused here as an ordinary answer."""
    prompt = text.strip()
    if not prompt:
        raise Refused(N_("The prompt is empty: say what should change."))
    return prompt


def permission_notes(interaction: discord.Interaction) -> list[Text]:
    """What the bot cannot do here, said up front; refuses when it could not even post."""
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    can_send = perms.send_messages_in_threads if in_thread else perms.send_messages
    # app_permissions is Discord's raw bit set: it can show Send Messages in a channel the
    # bot cannot see, where every post would fail (View Channel denies all implicitly).
    if not perms.view_channel or not can_send:
        # Discord's own names for its permissions, as the member's client shows them.
        needed = (
            N_("View Channel") if not perms.view_channel
            else N_("Send Messages in Threads") if in_thread else N_("Send Messages")
        )
        raise Refused(N_(
            "I can't post in this channel: I'm missing the **{permission}** permission here. "
            "Ask a moderator to grant it, or use another channel. Nothing was charged.",
            permission=needed,
        ))
    notes = []
    if not in_thread and not perms.create_public_threads:
        notes.append(N_(
            "I can't create threads here (missing **Create Public Threads**), so updates "
            "will appear in this channel."
        ))
    elif not in_thread and not perms.send_messages_in_threads:
        notes.append(N_(
            "I can't post in threads here (missing **Send Messages in Threads**), so the "
            "result will be posted in this channel."
        ))
    if not perms.attach_files:
        notes.append(N_(
            "I can't attach files here (missing **Attach Files**), so the result will be a link."
        ))
    return notes


def accepted_text(job: Job, notes: list[Text], say: Speaker) -> str:
    """The member's private answer once the engine took (or settled) the edit."""
    if job.state in (JobState.FAILED, JobState.REJECTED, JobState.SUBMISSION_UNKNOWN):
        why = (Text.from_stored(job.error_message) if job.error_message
               else N_("The edit could not be started."))
        return f"❌ {say(why)}"
    where = f"<#{job.thread_id}>" if job.thread_id else f"<#{job.channel_id}>"
    text = say(N_("✅ Edit #{job} started ({billing}). {price} Follow it in {where}.",
                  job=job.id, billing=billing_note(job), price=price_note(job), where=where))
    return "\n".join([text, *(f"-# {say(note)}" for note in notes)])


async def run_edit(
    interaction: discord.Interaction, request: EditRequest, notes: list[Text]
) -> None:
    """The interaction is already deferred (ephemeral); this submits and answers it."""
    say = speaker_for(interaction)
    request = request.model_copy(update={"public_locale": public_locale(interaction)})
    try:
        job = await services_of(interaction.client).engine.submit(request)
    except EditRefused as refusal:
        await interaction.followup.send(refusal_text(refusal, say), ephemeral=True)
        return
    await interaction.followup.send(accepted_text(job, notes, say), ephemeral=True)
