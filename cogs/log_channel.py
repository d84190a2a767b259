"""What moderators read in the server's log channel: alerts about jobs, and admin actions."""

from __future__ import annotations

import discord

from bot.i18n import N_, Text
from bot.jobs.notifier import ModeratorAlert
from storage.models import AuditEntry

_PROVIDER_ACCOUNT = N_(
    "the provider refuses the bot's status checks ({why}). The operator must fix the EvoLink "
    "account; the bot asks again every few minutes meanwhile, and the member's seconds stay "
    "reserved."
)


def moderator_alert(alert: ModeratorAlert, job: int) -> Text:
    """What moderators read in the log channel about job number `job`."""
    if alert in _ACCOUNT_PROBLEMS:
        return _PROVIDER_ACCOUNT.model_copy(update={"params": {"why": _ACCOUNT_PROBLEMS[alert]}})
    return _ALERTS[alert].model_copy(update={"params": {"job": job}})


_ACCOUNT_PROBLEMS: dict[ModeratorAlert, Text] = {
    ModeratorAlert.KEY_REJECTED: N_("HTTP 401: the API key"),
    ModeratorAlert.CREDITS_EXHAUSTED: N_("HTTP 402: out of credits"),
    ModeratorAlert.ACCESS_DENIED: N_("HTTP 403: access denied"),
}
_ALERTS: dict[ModeratorAlert, Text] = {
    ModeratorAlert.TASK_NOT_FOUND: N_(
        "the provider keeps answering \"task not found\". It may still be running and "
        "billed, so the member's seconds stay reserved and the bot keeps checking slowly. "
        "`/kling-admin jobs refetch job:{job}` asks the provider again now; once you know "
        "the provider failed it, `/kling-admin jobs fail job:{job}` refunds it."
    ),
    ModeratorAlert.TASK_LOST: N_(
        "the provider has not found this task for a day, so the bot stopped waiting and kept "
        "the charge (the provider may have billed it). Check the provider dashboard; "
        "`/kling-admin user grant` gives the seconds back if it was not billed."
    ),
    ModeratorAlert.RESULT_MISSING: N_(
        "the provider finished and billed this edit but sent no video. Check the provider "
        "dashboard; `/kling-admin jobs refetch job:{job}` asks the provider again and posts "
        "the video if it is there."
    ),
    ModeratorAlert.RESULT_EXPIRED: N_(
        "the finished video could not be downloaded before its link expired; the edit was "
        "billed. `/kling-admin jobs refetch job:{job}` asks the provider again."
    ),
    ModeratorAlert.RESULT_INVALID: N_(
        "the provider's result is not a video the bot can keep (wrong type or too large); "
        "the edit was billed. Check the provider dashboard."
    ),
    ModeratorAlert.UNDELIVERABLE: N_(
        "the finished video could not be posted in its thread or its channel (deleted, "
        "locked, or closed to the bot); it was billed and is kept. Once the bot can post "
        "there, `/kling-admin jobs redeliver job:{job}` posts it."
    ),
}


class LogChannelMirror:
    """Copies each audit entry to the server's log channel, if one is set."""

    def __init__(self, bot: discord.Client) -> None:
        self.bot = bot

    async def mirror(self, entry: AuditEntry, channel_id: int) -> None:
        text = f"🛡️ <@{entry.actor_id}> · `{entry.action}`" + (
            f" · {entry.target}" if entry.target else ""
        )
        await self.bot.get_partial_messageable(channel_id, guild_id=entry.guild_id).send(
            text, allowed_mentions=discord.AllowedMentions.none()
        )
