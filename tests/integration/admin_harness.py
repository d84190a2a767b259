"""Shared setup for the admin service tests: a fixed clock, jobs driven to any state."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.admin import AdminService
from bot.evolink import EvolinkClient
from bot.http_clients import HttpClients
from bot.jobs.actions import JobActions
from bot.jobs.config import EngineConfig
from bot.jobs.deps import EngineDeps
from bot.jobs.engine import JobEngine
from bot.jobs.intake import Intake
from bot.jobs.policy import QuotaDefaults
from bot.media.prober import Prober
from bot.media.store import LocalMediaStore
from bot.settings import Settings
from storage.admin import AdminRepository
from storage.database import Database
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository, NewMediaObject
from storage.models import (
    TRANSITIONS,
    AuditEntry,
    Job,
    JobSource,
    JobState,
    LedgerKind,
    MediaRole,
    NewJob,
)
from storage.quota import QuotaRepository
from tests.doubles import RecordingNotifier
from tests.http_doubles import http_clients

GUILD, OTHER_GUILD = 100, 200
MOD, ALICE, BOB = 1, 7, 8
CHANNEL = 50
NOW = 1_800_000_000.0  # Friday 2027-01-15 08:00 UTC
DAY = 86_400.0

DEFAULTS = QuotaDefaults(
    daily_seconds=60,
    monthly_seconds=600,
    max_concurrent=2,
    cooldown_s=30,
    guild_monthly_budget=6000,
    ceiling_daily_seconds=3600,
    ceiling_monthly_seconds=36000,
    ceiling_max_concurrent=10,
    attempt_limit=10,
    attempt_window_s=600,
)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingMirror:
    seen: list[tuple[int, int]] = field(default_factory=list)  # (audit id, channel id)
    broken: bool = False

    async def mirror(self, entry: AuditEntry, channel_id: int) -> None:
        if self.broken:
            raise ConnectionError("discord is down")
        self.seen.append((entry.id, channel_id))


class Harness:
    """The admin service over a real engine whose provider and files are never reached."""

    def __init__(
        self, db: Database, http: HttpClients, data_dir: Path, prober: Prober
    ) -> None:
        self.db = db
        self.clock = Clock()
        self.mirror = RecordingMirror()
        self.notifier = RecordingNotifier()
        self.jobs = JobRepository(db)
        self.quota = QuotaRepository(db)
        self.media = MediaRepository(db)
        settings = Settings(_env_file=None, DATA_DIR=str(data_dir))  # type: ignore[call-arg]
        config = dataclasses.replace(
            EngineConfig.from_settings(settings), quota=DEFAULTS, input_grace_s=600.0
        )
        store = LocalMediaStore(
            settings.media_dir, "https://bot.example", self.media, http.downloads.files, self.clock
        )
        self.engine = JobEngine(
            EngineDeps(
                jobs=self.jobs, quota=self.quota, media=self.media, guilds=GuildRepository(db),
                admin=AdminRepository(db), store=store,
                client=EvolinkClient(
                    http.provider.session, base_url="https://api.example", api_key="k"
                ),
                intake=Intake(
                    http.downloads, config.intake, store, self.media, self.clock, prober
                ),
                results=http.provider,
                notifier=self.notifier, clock=self.clock, files=http.downloads.files,
            ),
            config,
            wake=lambda: None,
        )
        self.service = AdminService(
            db, JobActions(self.engine), clock=self.clock, mirror=self.mirror
        )
        self._tasks = 0

    async def job(
        self,
        state: JobState = JobState.SUBMITTED,
        *,
        user_id: int = ALICE,
        guild_id: int = GUILD,
        seconds: int = 10,
        at: float = NOW,
        ledger: LedgerKind | None = None,
        error_code: str | None = None,
    ) -> Job:
        """A job reserved at `at` and moved on to `state`, closing its reservation by `ledger`.

        RECEIVED, FETCHING and REJECTED jobs have no reservation.
        """
        job = await self.jobs.create(
            NewJob(
                guild_id=guild_id, channel_id=CHANNEL, user_id=user_id,
                model="kling-o1-video-edit", prompt="make it snow",
                source=JobSource(video_url="https://cdn.example/clip.mp4"),
                callback_secret="s" * 32,
            ),
            now=at,
        )
        if state is JobState.RECEIVED:
            return job
        job = await self.jobs.transition(job.id, JobState.FETCHING, expected=None, now=at)
        if state is JobState.FETCHING:
            return job
        if state is JobState.REJECTED:  # refused by intake, before any reservation
            return await self.jobs.transition(
                job.id, state, expected=None, now=at, error_code="video_too_long"
            )
        job = await self.quota.reserve(
            job, billed_seconds=seconds, quota_seconds=seconds, credits=seconds * 12.0,
            duration_s=seconds - 0.5,
            role_ids=[], day_start=0, month_start=0, now=at, decide=lambda _: None,
        )
        if state is JobState.RESERVED:
            return job
        self._tasks += 1
        for step in (JobState.REHOSTED, JobState.SUBMITTING):
            job = await self.jobs.transition(job.id, step, expected=None, now=at)
        if state is JobState.SUBMISSION_UNKNOWN:
            return await self.jobs.transition(job.id, state, expected=None, now=at)
        job = await self.jobs.transition(
            job.id, JobState.SUBMITTED, expected=None, now=at,
            provider_task_id=f"task-{self._tasks}", submitted_at=at,
        )
        # Along TRANSITIONS up to the step before `state`.
        for step in (JobState.DOWNLOADING, JobState.ARCHIVED):
            if state in TRANSITIONS[job.state] or state is job.state:
                break
            job = await self.jobs.transition(job.id, step, expected=None, now=at)
        if ledger is not None:
            if state is JobState.SUBMITTED:
                raise ValueError("a closed reservation needs a later state")
            return await self.quota.close_job(
                job.id, ledger, state, expected={job.state}, now=at, inputs_expire_at=at + DAY,
                error_code=error_code or (
                    None if ledger is LedgerKind.SETTLE else "content_policy"
                ),
            )
        return await self.jobs.transition(job.id, state, expected=None, now=at)

    async def result(self, job: Job, *, expires_at: float | None = None) -> int:
        stored = await self.media.add(
            NewMediaObject(
                token=f"r{job.id:031d}", job_id=job.id, role=MediaRole.RESULT,
                relative_path=f"results/{job.id}.mp4", filename="result.mp4",
                content_type="video/mp4", size_bytes=1234, sha256="0" * 64,
                expires_at=expires_at,
            ),
            now=job.created_at,
        )
        return stored.id

    async def audit_count(self) -> int:
        async with self.db.read() as conn:
            row = await (await conn.execute("SELECT COUNT(*) FROM audit_log")).fetchone()
        assert row is not None
        return int(row[0])

    async def rows(self, sql: str, *params: object) -> list[dict[str, object]]:
        async with self.db.read() as conn:
            cursor = await conn.execute(sql, params)
            return [row._asdict() for row in await cursor.fetchall()]


@asynccontextmanager
async def admin_harness(db: Database, data_dir: Path, prober: Prober) -> AsyncIterator[Harness]:
    async with http_clients() as http:
        yield Harness(db, http, data_dir, prober)
