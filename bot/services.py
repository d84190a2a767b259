"""Builds the shared resources once, wires them together, and closes them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bot.admin import AdminService, AuditMirror
from bot.evolink import EvolinkClient, RateLimiter
from bot.http_clients import HttpClients
from bot.jobs.actions import JobActions
from bot.jobs.balance import ProviderBalance
from bot.jobs.config import EngineConfig
from bot.jobs.deps import EngineDeps
from bot.jobs.engine import JobEngine
from bot.jobs.intake import Intake
from bot.jobs.notifier import Notifier
from bot.jobs.tracker import HINT_CHANNEL, Tracker
from bot.media.filework import FileWork
from bot.media.prober import ProbeLimits, Prober
from bot.media.s3store import S3MediaStore
from bot.media.store import LocalMediaStore, MediaStore
from bot.metrics import JobCountsSnapshot, Metrics
from bot.provider_rate import provider_limiter
from bot.settings import MediaStoreKind, Settings
from bot.web import (
    LoopLagMonitor,
    WebServer,
    WebServices,
    create_metrics_app,
    create_web_app,
)
from storage.admin import AdminRepository
from storage.balance import BalanceHistory
from storage.database import Database
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository
from storage.models import JobState
from storage.quota import QuotaRepository
from storage.rate import RateBuckets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Everything the front end may call, all running: nothing here is ever half-built."""

    settings: Settings
    config: EngineConfig
    db: Database
    http: HttpClients
    jobs: JobRepository
    quota: QuotaRepository
    guilds: GuildRepository
    media: MediaRepository
    store: MediaStore
    client: EvolinkClient
    engine: JobEngine
    actions: JobActions
    tracker: Tracker
    admin: AdminService
    web: WebServer
    metrics_web: WebServer
    metrics: Metrics
    balance: ProviderBalance
    prober: Prober

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        settings: Settings,
        notifier: Notifier,
        *,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
        mirror: AuditMirror | None = None,
        prober: Prober | None = None,
    ) -> AsyncIterator[Services]:
        """Open everything, resume unfinished jobs, start the tracker and web server; on exit
        (or on a failure half-way) close whatever was opened, newest first.

        ``prober`` lets tests share one probe pool across many starts; it stays open."""
        config = config or EngineConfig.from_settings(settings)
        if refusal := settings.refused_for_processes():
            raise ValueError(refusal)
        if missing := settings.missing_for_media():
            raise ValueError(f"{', '.join(missing)} must be set for MEDIA_STORE="
                             f"{settings.media_store.value}")
        # Scratch files live in DATA_DIR whatever the database; only SQLite's file made it.
        await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
        async with contextlib.AsyncExitStack() as opened:
            db = await Database.open(settings.database, schema=settings.database_schema)
            opened.push_async_callback(db.close)
            files = opened.enter_context(FileWork.running())
            http = await opened.enter_async_context(
                HttpClients.running(
                    download_connections=settings.download_connections,
                    download_connections_per_host=settings.download_connections_per_host,
                    files=files,
                )
            )
            if prober is None:
                prober = await opened.enter_async_context(
                    Prober.running(probe_limits(settings))
                )
            jobs = JobRepository(db, owner=settings.process_name)
            media, guilds = MediaRepository(db), GuildRepository(db)
            lag = LoopLagMonitor()
            job_counts = JobCountsSnapshot(jobs.count_by_state)
            metrics = Metrics(
                job_counts=job_counts, job_states=[state.value for state in JobState],
                loop_lag=lambda: lag.last_lag,
            )
            store = await opened.enter_async_context(
                open_media_store(settings, media, files, clock)
            )
            client = EvolinkClient(
                http.provider.session, base_url=settings.evolink_base_url,
                api_key=settings.evolink_api_key or "",
                read_timeout=settings.evolink_read_timeout_s,
                on_call=metrics.record_provider_call,
                limiter=limiter or provider_limiter(settings, RateBuckets(db), clock),
            )
            balance = ProviderBalance(
                client, config.spec, clock, in_flight=jobs.unbilled_credits,
                low_edits=settings.low_balance_edits, every_s=settings.balance_check_s,
                history=BalanceHistory(db),
                on_low=lambda reading, edits: _warn_low_balance(
                    notifier, guilds, reading.remaining or 0.0, edits
                ),
            )
            metrics.watch_provider_balance(lambda: balance.reading)
            deps = EngineDeps(
                jobs=jobs, quota=QuotaRepository(db), media=media, guilds=guilds,
                admin=AdminRepository(db), store=store,
                client=client,
                intake=Intake(http.downloads, config.intake, store, media, clock, prober),
                results=http.provider,
                notifier=notifier, clock=clock, files=files, metrics=metrics, balance=balance,
            )
            schedule_changed = asyncio.Event()
            engine = JobEngine(deps, config, wake=schedule_changed.set)
            tracker = Tracker(
                engine, deps, config, schedule_changed,
                tell_holder=lambda job_id: db.notify(HINT_CHANNEL, str(job_id)),
            )
            actions = JobActions(engine)
            web = WebServer(
                create_web_app(
                    WebServices(
                        db=db, jobs=jobs, media=media,
                        local_store=store if isinstance(store, LocalMediaStore) else None,
                        on_callback=tracker.job_hint, lag=lag, metrics=metrics, clock=clock,
                    )
                ),
                settings.web_host, settings.web_port,
            )
            metrics_web = WebServer(
                create_metrics_app(metrics, lag, job_counts.refresh),
                settings.metrics_host, settings.metrics_port, name="metrics",
            )
            services = cls(
                settings=settings, config=config, db=db, http=http, jobs=jobs,
                quota=deps.quota, guilds=guilds, media=media, store=store, client=client,
                engine=engine, actions=actions, tracker=tracker,
                admin=AdminService(db, actions, clock=clock, mirror=mirror),
                web=web, metrics_web=metrics_web, metrics=metrics, balance=balance,
                prober=prober,
            )
            lag.start()
            opened.push_async_callback(lag.stop)
            await web.start()
            opened.push_async_callback(web.stop)
            await metrics_web.start()
            opened.push_async_callback(metrics_web.stop)
            await balance.start()
            opened.push_async_callback(balance.stop)
            await opened.enter_async_context(
                # Hints sent while the connection was down are lost: look at the schedule.
                db.listen(
                    HINT_CHANNEL, lambda job_id: tracker.hint_from_elsewhere(int(job_id)),
                    on_reconnect=tracker.wake,
                )
            )
            # Stopping order matters: the engine refuses new work first, then the tracker
            # lets running deliveries finish, then the web server and the rest close.
            opened.push_async_callback(tracker.stop)
            opened.push_async_callback(engine.stop)
            await tracker.recovery.resume()
            tracker.start()
            yield services
        log.info("services closed")


@contextlib.asynccontextmanager
async def open_media_store(
    settings: Settings, media: MediaRepository, files: FileWork, clock: Callable[[], float]
) -> AsyncIterator[MediaStore]:
    """The store MEDIA_STORE names; scratch downloads stay under DATA_DIR either way."""
    if settings.media_store is MediaStoreKind.S3:
        assert settings.s3_bucket is not None  # missing_for_media
        async with S3MediaStore.running(
            bucket=settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region, scratch_root=settings.media_dir, repository=media,
            files=files, unknown_end_s=settings.s3_presign_s, clock=clock,
        ) as s3:
            yield s3
        return
    assert settings.public_base_url is not None  # missing_for_media
    yield LocalMediaStore(settings.media_dir, settings.public_base_url, media, files, clock)


def probe_limits(settings: Settings) -> ProbeLimits:
    return ProbeLimits(
        workers=settings.probe_workers,
        memory_bytes=settings.probe_memory_mb * 1024 * 1024,
        timeout_s=settings.probe_timeout_s,
        cut_timeout_s=settings.cut_timeout_s,
    )


async def _warn_low_balance(
    notifier: Notifier, guilds: GuildRepository, remaining: float, edits_left: int
) -> None:
    await notifier.balance_low(remaining, edits_left, await guilds.log_channels())
