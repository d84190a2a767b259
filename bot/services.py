"""Builds the shared resources once, wires them together, and closes them in order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiolimiter import AsyncLimiter

from bot.evolink import EvolinkClient
from bot.jobs.config import EngineConfig
from bot.jobs.engine import EngineDeps, JobEngine
from bot.jobs.intake import Intake
from bot.jobs.notifier import Notifier
from bot.jobs.tracker import Tracker
from bot.media.store import LocalMediaStore
from bot.metrics import JobCountsSnapshot, Metrics
from bot.settings import Settings
from bot.web import LoopLagMonitor, WebServer, WebServices, create_web_app
from storage.database import Database
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository
from storage.models import JobState
from storage.quota import QuotaRepository

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    config: EngineConfig
    db: Database
    session: aiohttp.ClientSession
    jobs: JobRepository
    quota: QuotaRepository
    guilds: GuildRepository
    media: MediaRepository
    store: LocalMediaStore
    client: EvolinkClient
    engine: JobEngine
    tracker: Tracker
    web: WebServer
    lag: LoopLagMonitor
    metrics: Metrics

    @classmethod
    async def start(
        cls,
        settings: Settings,
        notifier: Notifier,
        *,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
        limiter: AsyncLimiter | None = None,
    ) -> Services:
        """Open everything, resume unfinished jobs, and start the tracker and web server."""
        config = config or EngineConfig.from_settings(settings)
        if settings.public_base_url is None:
            raise ValueError("PUBLIC_BASE_URL must be set: the provider fetches inputs there")
        db = await Database.open(settings.database_path)
        session = aiohttp.ClientSession()
        try:
            jobs, media = JobRepository(db), MediaRepository(db)
            lag = LoopLagMonitor()
            job_counts = JobCountsSnapshot(jobs.count_by_state)
            metrics = Metrics(
                job_counts=job_counts, job_states=[state.value for state in JobState],
                loop_lag=lambda: lag.last_lag,
            )
            store = LocalMediaStore(settings.media_dir, settings.public_base_url, media, clock)
            client = EvolinkClient(
                session, base_url=settings.evolink_base_url,
                api_key=settings.evolink_api_key or "",
                read_timeout=settings.evolink_read_timeout_s,
                on_call=metrics.record_provider_call,
                limiter=limiter or AsyncLimiter(settings.evolink_requests_per_second, 1.0),
            )
            deps = EngineDeps(
                jobs=jobs, quota=QuotaRepository(db), media=media, store=store, client=client,
                intake=Intake(session, config.intake, store), notifier=notifier, clock=clock,
                metrics=metrics,
            )
            schedule_changed = asyncio.Event()
            engine = JobEngine(deps, config, wake=schedule_changed.set)
            tracker = Tracker(engine, deps, config, schedule_changed)
            web = WebServer(
                create_web_app(
                    WebServices(
                        db=db, jobs=jobs, media=media, store=store,
                        on_callback=tracker.job_hint, lag=lag, metrics=metrics,
                        refresh_metrics=job_counts.refresh, clock=clock,
                    )
                ),
                settings.web_host, settings.web_port,
            )
            services = cls(
                settings=settings, config=config, db=db, session=session, jobs=jobs,
                quota=deps.quota, guilds=GuildRepository(db), media=media, store=store,
                client=client, engine=engine, tracker=tracker, web=web, lag=lag,
                metrics=metrics,
            )
            lag.start()
            await web.start()
            await engine.resume()
            tracker.start()
        except BaseException:
            await session.close()
            await db.close()
            raise
        return services

    async def close(self) -> None:
        """Stop taking work, let running writes finish, then close the shared resources."""
        await self.engine.stop()
        await self.tracker.stop()
        await self.web.stop()
        await self.lag.stop()
        await self.session.close()
        await self.db.close()
        log.info("services closed")
