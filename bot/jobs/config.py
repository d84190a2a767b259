"""The engine's tunables, derived from Settings so the engine never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.evolink.spec import RESULT_LINK_LIFETIME_S, ModelSpec
from bot.jobs.intake import IntakeConfig
from bot.jobs.policy import QuotaDefaults
from bot.media.urlpolicy import FetchPolicies
from bot.settings import Settings


@dataclass(frozen=True)
class ScheduleConfig:
    first_poll_max_s: float = 60.0
    min_interval_s: float = 5.0
    max_interval_s: float = 60.0
    lease_s: float = 20.0  # a job being handled is not picked again before this
    concurrency: int = 16
    max_delivery_attempts: int = 12
    retry_base_s: float = 5.0
    retry_max_s: float = 900.0
    # The provider's answers (issue 11). A 404 is "not found or expired" (§4.1), and a proxy
    # or a lagging replica says it too: only this many in a row, over at least this long,
    # hand the job to a moderator; until this long after the first one the job is polled.
    not_found_alert_after: int = 5
    not_found_alert_after_s: float = 600.0
    not_found_give_up_s: float = RESULT_LINK_LIFETIME_S
    # The pace for a job a moderator must look at, and after 401/402/403 on a poll.
    slow_poll_interval_s: float = 900.0
    # A task completed without results: ask again this many times before alerting.
    missing_result_polls: int = 4
    # The result link is downloaded until this long before it expires.
    result_link_margin_s: float = 3600.0
    housekeeping_every_s: float = 600.0


@dataclass(frozen=True)
class EngineConfig:
    # The model new jobs are created for. A job keeps its own model's rules for life
    # (`spec_for(job.model)`), so a restart under another EVOLINK_MODEL changes nothing.
    spec: ModelSpec
    callback_base_url: str | None
    intake: IntakeConfig
    quota: QuotaDefaults
    schedule: ScheduleConfig
    input_grace_s: float = 3600.0
    result_retention_s: float = 7 * 86400.0
    max_result_bytes: int = 500_000_000
    # Where downloads land, and the free space below which new edits are refused.
    data_dir: Path = Path("data")
    min_free_disk_bytes: int = 0
    # Downloads and checks running at once in this process (bot/jobs/admission.py).
    max_concurrent_intakes: int = 8
    max_queued_intakes: int = 32
    # Other processes share the jobs table (SHARD_IDS): a restart resumes only its own.
    shared_jobs: bool = False
    # The models members may pick (EVOLINK_MODELS), `spec` first; empty: `spec` alone.
    choices: tuple[ModelSpec, ...] = ()

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return self.choices or (self.spec,)

    def callback_url(self, job_id: int, secret: str) -> str | None:
        """Where the provider reports on a job's task; None without a public address."""
        base = self.callback_base_url
        return f"{base}/callbacks/evolink/{job_id}/{secret}" if base else None

    def enabled_spec(self, model: str | None) -> ModelSpec | None:
        """The rules of `model` if members may pick it (None: the default model)."""
        if model is None:
            return self.spec
        return next((spec for spec in self.models if spec.name == model), None)

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        spec = settings.model_spec
        return cls(
            spec=spec,
            choices=settings.model_specs,
            callback_base_url=settings.callback_base_url,
            intake=IntakeConfig(
                read_timeout=min(30.0, settings.download_timeout_s),
                total_timeout=settings.download_timeout_s,
                min_rate=settings.download_min_kb_per_s * 1000,
                policies=FetchPolicies.build(
                    discord_api_base=(
                        None if settings.uses_real_discord else settings.discord_api_base
                    ),
                    insecure=settings.allow_insecure_media_links,
                ),
            ),
            quota=QuotaDefaults(
                daily_seconds=settings.default_daily_seconds,
                monthly_seconds=settings.default_monthly_seconds,
                max_concurrent=settings.default_max_concurrent,
                cooldown_s=settings.default_cooldown_s,
                guild_monthly_budget=settings.default_guild_budget,
                ceiling_daily_seconds=settings.ceiling_daily_seconds,
                ceiling_monthly_seconds=settings.ceiling_monthly_seconds,
                ceiling_max_concurrent=settings.ceiling_max_concurrent,
                attempt_limit=settings.attempt_limit,
                attempt_window_s=settings.attempt_window_s,
            ),
            schedule=ScheduleConfig(
                first_poll_max_s=settings.poll_first_max_s,
                min_interval_s=settings.poll_min_interval_s,
                max_interval_s=settings.poll_max_interval_s,
                lease_s=settings.job_lease_s,
            ),
            input_grace_s=settings.input_grace_s,
            result_retention_s=settings.result_retention_s,
            max_result_bytes=settings.max_result_bytes,
            data_dir=settings.data_dir,
            min_free_disk_bytes=settings.min_free_disk_mb * 1024 * 1024,
            max_concurrent_intakes=settings.max_concurrent_intakes,
            max_queued_intakes=settings.max_queued_intakes,
            shared_jobs=settings.several_processes,
        )
