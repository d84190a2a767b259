"""The engine's Notifier, spoken in Discord: status message, thread, progress, delivery.

Everything goes through REST by id (partial messageables), so it works right after a
restart, before the gateway has filled the caches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import discord

from bot.i18n import N_, Number, Speaker, Text, english
from bot.jobs.messages import counted_seconds
from bot.jobs.notifier import ArchivedResult, DeliveryFailed, ModeratorAlert, StatusRefs
from cogs.i18n import catalogs_of, job_speaker
from cogs.log_channel import moderator_alert
from cogs.render import charge_text, safe_prompt, status_text, thread_name
from cogs.status_editor import StatusEditor
from cogs.views import result_view
from storage.models import Job, JobState

log = logging.getLogger(__name__)

BOT_DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # unboosted servers (discord.py agrees)
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day: long enough for any edit
_MISSING_PERMISSIONS = 50013
_TOO_LARGE = 40005


def only_user(user_id: int) -> discord.AllowedMentions:
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False
    )


class DiscordNotifier:
    def __init__(
        self, bot: discord.Client, *, edit_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self.clock = clock
        self.editor = StatusEditor(edit_interval, self._edit_status)

    # --- helpers -------------------------------------------------------------------------

    def _say(self, job: Job) -> Speaker:
        """The job's public messages speak the server's language."""
        return job_speaker(catalogs_of(self.bot), job)

    def _server_speaker(self, guild_id: int) -> Speaker:
        """A server's language from the gateway's cache (English until it is filled)."""
        guild = self.bot.get_guild(guild_id)
        return catalogs_of(self.bot).speaker(guild.preferred_locale.value if guild else None)

    def _channel(self, channel_id: int, guild_id: int) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(channel_id, guild_id=guild_id)

    async def _upload_limit(self, guild_id: int) -> int:
        """The server's upload limit (its boost tier). A server on a shard another process
        holds is not in this one's cache (it delivers after a takeover): it is asked over
        REST, else Discord's default for unboosted servers applies (a bigger result is then
        linked)."""
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            try:
                guild = await self.bot.fetch_guild(guild_id)
            except discord.HTTPException as error:
                log.warning("guild lookup failed guild=%d status=%s: default upload limit",
                            guild_id, error.status)
                return BOT_DEFAULT_UPLOAD_LIMIT
        return guild.filesize_limit

    async def _edit_status(self, job: Job) -> None:
        if job.status_message_id is None:
            return
        message = self._channel(job.channel_id, job.guild_id).get_partial_message(
            job.status_message_id
        )
        await message.edit(
            content=status_text(job, self.clock(), self._say(job)),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _final_status(self, job: Job) -> None:
        await self.editor.settle(job.id)
        try:
            await self._edit_status(job)
        except discord.HTTPException as error:
            log.warning("final status edit failed job=%d status=%s", job.id, error.status)

    def _places(self, job: Job) -> list[int]:
        """Where the job's messages may go, in order: its thread, its channel, and for a job
        started inside a thread (a member's thread, a forum post) that thread's parent.

        A forum or media parent is left out: it holds only posts, and a message there is
        refused (Channels → Channel Types: "a channel that can only contain threads"; JSON
        code 50008). A new post instead would be a public thread nobody asked for in a place
        moderators organise, so the result is kept and the moderators are told. A parent
        missing from the cache (another shard's server) is tried: its refusal is final too.
        """
        parent = job.source.rules_channel_id
        if parent is not None and isinstance(self.bot.get_channel(parent), discord.ForumChannel):
            parent = None
        return list(dict.fromkeys(t for t in (job.thread_id, job.channel_id, parent) if t))

    async def _post_to_member(self, job: Job, content: str) -> None:
        """Tell the requester in the first of the job's places that takes the message."""
        for target in self._places(job):
            try:
                await self._channel(target, job.guild_id).send(
                    content, allowed_mentions=only_user(job.user_id)
                )
                return
            except discord.HTTPException as error:
                log.warning("notice failed job=%d target=%d status=%s", job.id, target,
                            error.status)

    # --- Notifier protocol ---------------------------------------------------------------

    async def job_accepted(self, job: Job) -> StatusRefs:
        channel = self._channel(job.channel_id, job.guild_id)
        message = await channel.send(
            status_text(job, self.clock(), self._say(job)),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.editor.posted(job.channel_id)
        if isinstance(self.bot.get_channel(job.channel_id), discord.Thread):
            return StatusRefs(status_message_id=message.id, thread_id=job.channel_id)
        try:
            thread = await self.bot.http.start_thread_with_message(
                job.channel_id, message.id, name=thread_name(job),
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            )
        except discord.HTTPException as error:
            # No thread permission (or a channel that has none): updates stay in the channel.
            log.warning("thread creation failed job=%d status=%s", job.id, error.status)
            return StatusRefs(status_message_id=message.id, thread_id=None)
        return StatusRefs(status_message_id=message.id, thread_id=int(thread["id"]))

    async def progress(self, job: Job) -> None:
        self.editor.submit(job)

    async def result_ready(self, job: Job, result: ArchivedResult) -> int:
        # Only the post: the engine records the delivery right after it, and nothing may
        # stand between them (a restart in that gap would post the video twice). The status
        # message says "Done" once that is recorded (the engine's progress call).
        # A delivery resumed at start waits for the gateway to fill the guild cache: the
        # server's upload limit (its boost tier) is known only then.
        await self.bot.wait_until_ready()
        return await self._deliver(job, result)

    async def _deliver(self, job: Job, result: ArchivedResult) -> int:
        """Post the video in the first of the job's places that takes it (a thread may be
        deleted, archived or closed to the bot); attach it when it fits and the bot may
        attach, else link it."""
        targets = self._places(job)
        for index, target_id in enumerate(targets):
            try:
                return await self._deliver_to(
                    self._channel(target_id, job.guild_id), job, result
                )
            except DeliveryFailed as failure:
                if failure.retryable or index == len(targets) - 1:
                    raise
                log.warning("delivery refused job=%d target=%d: trying the next place",
                            job.id, target_id)
        raise DeliveryFailed(N_("The edit has nowhere to be posted."), retryable=False)

    async def _deliver_to(
        self, target: discord.PartialMessageable, job: Job, result: ArchivedResult
    ) -> int:
        say, mention = self._say(job), f"<@{job.user_id}>"
        view = result_view(job.id, say)
        why = N_("Too large to attach here")
        if result.media.size_bytes <= await self._upload_limit(job.guild_id):
            try:
                async with result.local_file() as path:
                    message = await target.send(
                        say(N_("{member} your edit #{job} is ready!", member=mention,
                               job=job.id)),
                        file=discord.File(path, filename=result.media.filename),
                        view=view, allowed_mentions=only_user(job.user_id),
                    )
                return message.id
            except discord.HTTPException as error:
                # A proxy in front of Discord may refuse the size with a bare 413.
                too_large = error.code == _TOO_LARGE or error.status == 413
                if error.code != _MISSING_PERMISSIONS and not too_large:
                    raise _delivery_failure(error) from error
                log.info("attaching failed job=%d code=%s: sending a link", job.id, error.code)
                if error.code == _MISSING_PERMISSIONS:
                    why = N_("I can't attach files here (missing **Attach Files**)")
        if result.expires_at:
            expires = int(result.expires_at)
            lifetime = N_("until {time} ({relative})", time=f"<t:{expires}:f>",
                          relative=f"<t:{expires}:R>")
        else:
            lifetime = N_("for a limited time")
        try:
            message = await target.send(
                say(N_("{member} your edit #{job} is ready: {url}", member=mention, job=job.id,
                       url=result.public_url)) + "\n-# "
                + say(N_("{why}, so it is linked; the link works {lifetime}.", why=why,
                         lifetime=lifetime)),
                view=view, allowed_mentions=only_user(job.user_id),
            )
        except discord.HTTPException as error:
            raise _delivery_failure(error) from error
        return message.id

    async def failed(self, job: Job) -> None:
        await self._final_status(job)
        say = self._say(job)
        reason = (Text.from_stored(job.error_message) if job.error_message
                  else N_("The edit failed."))
        charge = charge_text(job) if job.state is JobState.FAILED else None
        lines = [
            say(N_("{member} edit #{job} did not work out. {reason}",
                   member=f"<@{job.user_id}>", job=job.id, reason=reason)),
            *([f"-# {say(charge)}"] if charge else []),
            "-# " + say(N_("Prompt: {prompt}", prompt=safe_prompt(job.prompt))),
        ]
        await self._post_to_member(job, "\n".join(lines))

    async def outcome_unknown(self, job: Job, log_channel_id: int | None) -> None:
        await self.failed(job)
        await self._alert_moderators(job, log_channel_id, N_(
            "⚠️ Edit #{job}: the provider did not answer the submission, so it may or may not "
            "be running and billed. The bot adopts the task if the provider reports it. "
            "Otherwise check the provider dashboard: if the task is there, use "
            "`/kling-admin jobs attach job:{job} task:<task id>`; if nothing was created, "
            "`/kling-admin jobs fail job:{job}` refunds it. Unresolved after 24 h, it is "
            "settled as a loss.", job=job.id,
        ))

    async def adopted(self, job: Job, log_channel_id: int | None) -> None:
        await self._post_to_member(job, self._say(job)(N_(
            "{member} found it: your edit #{job} is running at the provider after all. The "
            "result will be posted here.", member=f"<@{job.user_id}>", job=job.id,
        )))
        await self._alert_moderators(job, log_channel_id, N_(
            "✅ Edit #{job}: its provider task `{task}` was found and is being tracked; nothing "
            "else to do.", job=job.id, task=job.provider_task_id or "",
        ))

    async def outcome_lost(self, job: Job, log_channel_id: int | None) -> None:
        await self.failed(job)
        await self._alert_moderators(job, log_channel_id, N_(
            "⚠️ Edit #{job} by {member}: no provider task turned up within 24 h, so its "
            "{seconds} s were settled as used (the provider may have billed it). If the "
            "provider dashboard shows nothing was created, give them back with "
            "`/kling-admin user grant`.", job=job.id, member=f"<@{job.user_id}>",
            seconds=counted_seconds(job),
        ))

    async def balance_low(
        self, remaining: float, edits_left: int, log_channels: list[tuple[int, int]]
    ) -> None:
        text = N_(
            "⚠️ The bot's provider account has {credits} credits left: about {edits} more "
            "edit(s) at the longest clip. Edits it cannot pay for are refused until the "
            "operator tops it up.", credits=Number(number=remaining, digits=0), edits=edits_left,
        )
        for guild_id, channel_id in log_channels:
            try:
                await self._channel(channel_id, guild_id).send(
                    self._server_speaker(guild_id)(text),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException as error:
                log.warning("balance alert failed guild=%d status=%s", guild_id, error.status)

    async def alert_moderators(
        self, job: Job, log_channel_id: int | None, alert: ModeratorAlert
    ) -> None:
        await self._alert_moderators(job, log_channel_id, N_(
            "⚠️ Edit #{job} (provider task `{task}`): {what}", job=job.id,
            task=job.provider_task_id or "", what=moderator_alert(alert, job.id),
        ))

    async def _alert_moderators(self, job: Job, log_channel_id: int | None, text: Text) -> None:
        """In the log channel, in the server's language (the job's public locale)."""
        log.error("moderator alert job=%d guild=%d: %s", job.id, job.guild_id, english(text))
        if log_channel_id is None:
            return
        try:
            await self._channel(log_channel_id, job.guild_id).send(
                self._say(job)(text), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as error:
            log.warning("moderator alert failed guild=%d status=%s", job.guild_id, error.status)

    async def close(self) -> None:
        await self.editor.close()


# Why a post was refused for good, by Discord's JSON error code
# (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
_FINAL_REASONS = {
    10003: N_("The thread or channel was deleted."),
    50001: N_("I can't see the thread or channel any more (missing **View Channel**)."),
    50013: N_("I am missing the Send Messages permission where this edit was requested."),
    50083: N_("The thread was archived or locked."),
}


def _delivery_failure(error: discord.HTTPException) -> DeliveryFailed:
    """A 4xx other than 429 is Discord's final word for that place (retrying there for an
    hour changes nothing: the next place is tried at once); a 429 or 5xx may pass."""
    if 400 <= error.status < 500 and error.status != 429:
        reason = _FINAL_REASONS.get(
            error.code, N_("Discord refused the post (HTTP {status}).", status=error.status)
        )
        return DeliveryFailed(reason, retryable=False)
    return DeliveryFailed(
        N_("Discord answered HTTP {status}.", status=error.status), retryable=True
    )
