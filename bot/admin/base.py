"""What every part of the admin service shares: repositories, clock, audit mirroring."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from bot.admin.errors import AdminRefused
from bot.admin.models import Change
from bot.admin.texts import job_missing
from bot.admin.validation import ceilings_from
from bot.jobs.actions import JobActions
from bot.jobs.policy import EffectiveLimits
from storage.admin import AdminRepository
from storage.database import Database
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository
from storage.models import AuditEntry, GuildSettings, Job, UsageSnapshot
from storage.quota import QuotaRepository

log = logging.getLogger(__name__)

ChangeT = TypeVar("ChangeT", bound=Change)


class AuditMirror(Protocol):
    """Copies an audit row to the guild's log channel (the Discord front end implements it)."""

    async def mirror(self, entry: AuditEntry, channel_id: int) -> None: ...


class AdminBase:
    def __init__(
        self,
        db: Database,
        actions: JobActions,
        *,
        clock: Callable[[], float] = time.time,
        mirror: AuditMirror | None = None,
    ) -> None:
        # The engine's own policy, so moderators see exactly the limits /edit applies.
        self.policy = actions.engine.policy
        self.ceilings = ceilings_from(actions.engine.config.quota)
        self.mirror = mirror
        self._actions = actions
        self._clock = clock
        self._admin = AdminRepository(db)
        self._guilds = GuildRepository(db)
        self._quota = QuotaRepository(db)
        self._jobs = JobRepository(db)
        self._media = MediaRepository(db)

    async def _mirrored(self, change: ChangeT, channel_id: int | None = None) -> ChangeT:
        """After the commit, copy the audit row to the log channel, best effort.

        The change is already durable; a Discord hiccup must not turn it into an error
        the moderator would retry (and so apply twice). `channel_id` overrides the
        configured channel (to tell the old log channel it is no longer used).
        """
        if self.mirror is None:
            return change
        if channel_id is None:
            channel_id = (await self._guilds.settings(change.audit.guild_id)).log_channel_id
        if channel_id is None:
            return change
        try:
            await self.mirror.mirror(change.audit, channel_id)
        except Exception:
            log.warning("audit mirror failed audit=%d", change.audit.id, exc_info=True)
        return change

    def _guild_limits(self, settings: GuildSettings) -> EffectiveLimits:
        # No user or role override: what the server setting or the bot default gives.
        empty = UsageSnapshot(
            used_today=0, used_month=0, granted_today=0, granted_month=0,
            guild_used_month=0, active_jobs=0, last_submit_at=None, blocked=None,
            guild=settings, user_override=None, role_overrides=[], channel_rules={},
        )
        return self.policy.limits(empty)

    async def _job_in_guild(self, guild_id: int, job_id: int) -> Job:
        job = await self._jobs.get(job_id)
        # Another server's job is reported as missing: ids must not leak across guilds.
        if job is None or job.guild_id != guild_id:
            raise AdminRefused(job_missing(job_id))
        return job
