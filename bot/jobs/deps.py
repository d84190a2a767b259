"""What the job engine and the tracker work with: repositories, media, provider, notifier."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.evolink import EvolinkClient
from bot.jobs.balance import ProviderBalance
from bot.jobs.intake import Intake
from bot.jobs.notifier import Notifier
from bot.media.fetch import Fetcher
from bot.media.filework import FileWork
from bot.media.store import MediaStore
from bot.metrics import Metrics
from storage.admin import AdminRepository
from storage.guilds import GuildRepository
from storage.jobs import JobRepository
from storage.media import MediaRepository
from storage.quota import QuotaRepository


class DiskUsage(Protocol):
    @property
    def free(self) -> int: ...


@dataclass
class EngineDeps:
    jobs: JobRepository
    quota: QuotaRepository
    media: MediaRepository
    guilds: GuildRepository
    store: MediaStore
    client: EvolinkClient
    intake: Intake
    # Results come from the provider: fetched on its pool, never queued behind members'.
    results: Fetcher
    notifier: Notifier
    clock: Callable[[], float]
    admin: AdminRepository
    files: FileWork  # blocking file-system calls, off the loop and off its default pool
    metrics: Metrics | None = None
    balance: ProviderBalance | None = None
    disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage
