"""The one typed configuration object, loaded from the environment and `.env`.

The variable names in the "configuration contract" block are public interface
(DESIGN.md §3): operators and black-box tests rely on them, so they are spelled
out as aliases rather than derived from field names.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.evolink.spec import MODEL_SPECS, EditModel, ModelSpec
from storage.database import POSTGRESQL_URLS, SCHEMA_NAME

DISCORD_API_BASE_DEFAULT = "https://discord.com/api/v10"
EVOLINK_BASE_URL_DEFAULT = "https://api.evolink.ai"


def _absolute_http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value.rstrip("/")


def is_public_https(url: str) -> bool:
    """Whether EvoLink would accept `url` as a callback target (https, public host)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host  # a bare intranet name like "bot" is not reachable from the provider
    return address.is_global


NonNegativeInt = Annotated[int, Field(ge=0)]

# A SigV4 presigned URL lives at most 7 days (AWS's limit; R2 and MinIO keep it too).
PRESIGN_MAX_S: Final = 7 * 86400

MEDIA_NEEDS = (
    "MEDIA_STORE=local (the default) needs PUBLIC_BASE_URL: the provider fetches inputs from the "
    "bot's web server. MEDIA_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL, S3_REGION outside "
    "AWS); PUBLIC_BASE_URL is then only for callbacks, and without it the bot polls."
)


class MediaStoreKind(StrEnum):
    LOCAL = "local"  # files in DATA_DIR, served by the bot's web server (PUBLIC_BASE_URL)
    S3 = "s3"  # an S3-compatible bucket, reached by presigned URLs


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
    )

    # --- configuration contract (DESIGN.md §3) ---
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    discord_api_base: str = Field(DISCORD_API_BASE_DEFAULT, alias="DISCORD_API_BASE")
    discord_gateway_url: str | None = Field(None, alias="DISCORD_GATEWAY_URL")
    evolink_api_key: SecretStr | None = Field(None, alias="EVOLINK_API_KEY")
    evolink_base_url: str = Field(EVOLINK_BASE_URL_DEFAULT, alias="EVOLINK_BASE_URL")
    evolink_model: EditModel = Field(EditModel.STANDARD, alias="EVOLINK_MODEL")
    # The models members may pick in /edit, e.g. "kling-o1-video-edit,kling-o1-video-edit-fast".
    # Unset: EVOLINK_MODEL alone. EVOLINK_MODEL is the default choice and must be listed.
    evolink_models: Annotated[list[str] | None, NoDecode] = Field(None, alias="EVOLINK_MODELS")
    public_base_url: str | None = Field(None, alias="PUBLIC_BASE_URL")
    # Where moderators read the moderator guide; named in the setup guide posted on joining.
    moderator_guide_url: str | None = Field(None, alias="MODERATOR_GUIDE_URL")
    web_host: str = Field("0.0.0.0", alias="WEB_HOST")
    web_port: int = Field(8080, ge=0, le=65535, alias="WEB_PORT")
    # Prometheus scrapes here; never the public listener (0 picks a free port, for tests).
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")
    metrics_port: int = Field(9108, ge=0, le=65535, alias="METRICS_PORT")
    data_dir: Path = Field(Path("./data"), alias="DATA_DIR")
    media_store: MediaStoreKind = Field(MediaStoreKind.LOCAL, alias="MEDIA_STORE")
    s3_bucket: str | None = Field(None, alias="S3_BUCKET")
    s3_endpoint_url: str | None = Field(None, alias="S3_ENDPOINT_URL")  # unset: AWS itself
    s3_region: str | None = Field(None, alias="S3_REGION")
    # Unset: SQLite in DATA_DIR. A secret: the URL may carry the database password.
    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    # PostgreSQL only: the schema holding the bot's tables (several bots or tests can share
    # one database). Unset: the server's search path, normally `public`.
    database_schema: str | None = Field(None, alias="DATABASE_SCHEMA")

    # --- operational knobs (names are ours) ---
    dev_guild_id: int | None = Field(None, alias="DEV_GUILD_ID")
    shard_count: int | None = Field(None, gt=0, alias="SHARD_COUNT")
    # This process's shards of SHARD_COUNT, e.g. "0,1" here and "2,3" in a second process.
    shard_ids: Annotated[list[int] | None, NoDecode] = Field(None, alias="SHARD_IDS")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_json: bool = Field(False, alias="LOG_JSON")
    evolink_read_timeout_s: float = Field(30.0, gt=0, alias="EVOLINK_READ_TIMEOUT_SECONDS")
    evolink_requests_per_second: float = Field(5.0, gt=0, alias="EVOLINK_REQUESTS_PER_SECOND")
    poll_first_max_s: float = Field(60.0, gt=0, alias="POLL_FIRST_MAX_SECONDS")
    poll_min_interval_s: float = Field(5.0, gt=0, alias="POLL_MIN_INTERVAL_SECONDS")
    poll_max_interval_s: float = Field(60.0, gt=0, alias="POLL_MAX_INTERVAL_SECONDS")
    # How long a process holds a job it works on before another process may take it over
    # (several processes); renewed three times within it while the work goes on.
    job_lease_s: float = Field(20.0, ge=3, alias="JOB_LEASE_SECONDS")
    input_grace_s: float = Field(3600.0, ge=0, alias="INPUT_GRACE_SECONDS")
    result_retention_s: float = Field(7 * 86400.0, gt=0, alias="RESULT_RETENTION_SECONDS")
    # How long a presigned input link works while the provider may still fetch it (a linked
    # result's link lives as long as the result is kept, at most 7 days).
    s3_presign_s: int = Field(86400, ge=60, le=PRESIGN_MAX_S, alias="S3_PRESIGN_SECONDS")
    # Local demo and tests only: lets /edit video_url links and the provider's result links
    # be http:// and loopback (the simulator's).
    allow_insecure_media_links: bool = Field(False, alias="ALLOW_INSECURE_MEDIA_LINKS")
    # Member downloads (attachments, links) have their own connection pool, capped so they
    # never hold up provider calls and one slow host never takes every connection.
    download_connections: int = Field(16, gt=0, alias="DOWNLOAD_CONNECTIONS")
    download_connections_per_host: int = Field(4, gt=0, alias="DOWNLOAD_CONNECTIONS_PER_HOST")
    status_edit_interval_s: float = Field(5.0, ge=0, alias="STATUS_EDIT_INTERVAL_SECONDS")
    max_result_bytes: int = Field(500_000_000, gt=0, alias="MAX_RESULT_BYTES")
    # New edits are refused while DATA_DIR has less free space than this.
    min_free_disk_mb: NonNegativeInt = Field(1024, alias="MIN_FREE_DISK_MB")
    # Media probes run in worker processes: how many, the memory each may add to the
    # decoders it starts with, and how long one may take before it is killed and refused.
    probe_workers: int = Field(2, ge=1, le=32, alias="PROBE_WORKERS")
    probe_memory_mb: int = Field(512, ge=32, alias="PROBE_MEMORY_MB")
    probe_timeout_s: float = Field(15.0, gt=0, alias="PROBE_TIMEOUT_SECONDS")
    # Cutting a long clip to the model's maximum may re-encode it: in the same workers.
    cut_timeout_s: float = Field(120.0, gt=0, alias="CUT_TIMEOUT_SECONDS")
    # The provider balance: moderators are alerted when it pays for fewer edits than this.
    low_balance_edits: NonNegativeInt = Field(10, alias="LOW_BALANCE_EDITS")
    balance_check_s: float = Field(300.0, gt=0, alias="BALANCE_CHECK_SECONDS")

    # Quota defaults; moderators override per guild, never above the ceilings.
    default_daily_seconds: NonNegativeInt = Field(60, alias="DEFAULT_DAILY_SECONDS")
    default_monthly_seconds: NonNegativeInt = Field(600, alias="DEFAULT_MONTHLY_SECONDS")
    default_max_concurrent: NonNegativeInt = Field(2, alias="DEFAULT_MAX_CONCURRENT")
    default_cooldown_s: NonNegativeInt = Field(30, alias="DEFAULT_COOLDOWN_SECONDS")
    default_guild_budget: NonNegativeInt = Field(
        6000, alias="DEFAULT_GUILD_MONTHLY_SECONDS"
    )
    ceiling_daily_seconds: NonNegativeInt = Field(3600, alias="CEILING_DAILY_SECONDS")
    ceiling_monthly_seconds: NonNegativeInt = Field(36000, alias="CEILING_MONTHLY_SECONDS")
    ceiling_max_concurrent: NonNegativeInt = Field(10, alias="CEILING_MAX_CONCURRENT")
    # Refused attempts (each one downloaded and checked something) a member may make within
    # the window before new edits wait; 0 turns the limit off.
    attempt_limit: NonNegativeInt = Field(10, alias="ATTEMPT_LIMIT")
    attempt_window_s: int = Field(600, gt=0, alias="ATTEMPT_WINDOW_SECONDS")
    download_timeout_s: float = Field(300.0, gt=0, alias="DOWNLOAD_TIMEOUT_SECONDS")
    # What a member's download must average after its first 10 s (0: no floor).
    download_min_kb_per_s: NonNegativeInt = Field(32, alias="DOWNLOAD_MIN_KB_PER_SECOND")
    # Downloads and checks of new edits running at once in this process, all members together.
    max_concurrent_intakes: int = Field(8, gt=0, alias="MAX_CONCURRENT_INTAKES")
    max_queued_intakes: NonNegativeInt = Field(32, alias="MAX_QUEUED_INTAKES")

    @field_validator("discord_api_base", "evolink_base_url")
    @classmethod
    def _check_base(cls, value: str, info: ValidationInfo) -> str:
        alias = cls.model_fields[info.field_name or ""].alias or str(info.field_name)
        return _absolute_http_url(alias, value)

    @field_validator("public_base_url", "s3_endpoint_url", "moderator_guide_url")
    @classmethod
    def _check_optional_base(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        return cls._check_base(value, info)

    @field_validator("discord_gateway_url")
    @classmethod
    def _check_gateway(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"DISCORD_GATEWAY_URL must be an absolute ws(s) URL, got {value!r}")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return [int(part) for part in text.split(",")]
            except ValueError:
                raise ValueError(f"SHARD_IDS must be numbers like 0,1, got {value!r}") from None
        return value

    @field_validator("evolink_models", mode="before")
    @classmethod
    def _parse_models(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = [name.strip() for name in value.split(",") if name.strip()]
        return names or None

    @field_validator("evolink_models")
    @classmethod
    def _check_models(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        known = ", ".join(model.value for model in EditModel)
        unknown = [name for name in value if name not in set(EditModel)]
        if unknown:
            raise ValueError(f"EVOLINK_MODELS names unknown model(s) {', '.join(unknown)}; "
                             f"known: {known}")
        if len(set(value)) != len(value):
            raise ValueError(f"EVOLINK_MODELS lists a model twice: {', '.join(value)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(POSTGRESQL_URLS):
            # The value is not echoed: it may carry a password.
            raise ValueError("DATABASE_URL must be a postgresql:// URL; unset it for SQLite")
        return value

    @field_validator("database_schema")
    @classmethod
    def _check_database_schema(cls, value: str | None) -> str | None:
        if not value:
            return None
        # Becomes the connection's search_path: a plain, unquoted name is all it may be.
        if not SCHEMA_NAME.fullmatch(value):
            raise ValueError(
                "DATABASE_SCHEMA must be a lowercase name of letters, digits and _ "
                f"(at most 63), got {value!r}"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return level

    @model_validator(mode="after")
    def _check_relations(self) -> Self:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT (the shards of all processes)")
            wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if wrong or len(set(self.shard_ids)) != len(self.shard_ids):
                raise ValueError(
                    f"SHARD_IDS must be distinct numbers from 0 to {self.shard_count - 1}"
                )
        if self.evolink_models is not None and self.evolink_model not in self.evolink_models:
            raise ValueError(
                f"EVOLINK_MODEL ({self.evolink_model.value}), the default choice, must be one "
                f"of EVOLINK_MODELS ({', '.join(self.evolink_models)})"
            )
        if self.database_schema is not None and self.database_url is None:
            raise ValueError("DATABASE_SCHEMA needs DATABASE_URL (a PostgreSQL database)")
        if self.poll_min_interval_s > self.poll_max_interval_s:
            raise ValueError("POLL_MIN_INTERVAL_SECONDS must not exceed POLL_MAX_INTERVAL_SECONDS")
        for default, ceiling, name in (
            (self.default_daily_seconds, self.ceiling_daily_seconds, "DAILY_SECONDS"),
            (self.default_monthly_seconds, self.ceiling_monthly_seconds, "MONTHLY_SECONDS"),
            (self.default_max_concurrent, self.ceiling_max_concurrent, "MAX_CONCURRENT"),
        ):
            if default > ceiling:
                raise ValueError(f"DEFAULT_{name} ({default}) exceeds CEILING_{name} ({ceiling})")
        return self

    # --- derived values ---
    @property
    def model_spec(self) -> ModelSpec:
        """What the chosen model accepts and bills (bot/evolink/spec.py)."""
        return MODEL_SPECS[self.evolink_model]

    @property
    def model_specs(self) -> tuple[ModelSpec, ...]:
        """The models members may pick, the default (EVOLINK_MODEL) first."""
        enabled = self.evolink_models or [self.evolink_model.value]
        others = [MODEL_SPECS[EditModel(name)] for name in enabled if name != self.evolink_model]
        return (self.model_spec, *others)

    @property
    def uses_real_discord(self) -> bool:
        return self.discord_api_base == DISCORD_API_BASE_DEFAULT

    @property
    def callback_base_url(self) -> str | None:
        """Base for provider callbacks, or None when the provider could not reach us."""
        if self.public_base_url and is_public_https(self.public_base_url):
            return self.public_base_url
        return None

    @property
    def database_path(self) -> Path:
        return self.data_dir / "kling.sqlite3"

    @property
    def database_password(self) -> str | None:
        """The password inside DATABASE_URL, kept out of logs."""
        if self.database_url is None:
            return None
        return urlsplit(self.database_url.get_secret_value()).password

    @property
    def database(self) -> Path | str:
        """What `Database.open` takes: the PostgreSQL URL if set, else the SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.database_path

    @property
    def several_processes(self) -> bool:
        """This process runs only some of the shards: others share its database."""
        return self.shard_ids is not None and len(self.shard_ids) != self.shard_count

    @property
    def process_name(self) -> str:
        """Names this process in the job leases it holds; stable across restarts (its
        shards), so a process that comes back resumes the jobs it left behind."""
        if not self.several_processes or self.shard_ids is None:
            return "bot"
        return "shards-" + "-".join(str(shard) for shard in sorted(self.shard_ids))

    def refused_for_processes(self) -> str | None:
        """Why several processes cannot run with these settings (None: they can). They
        share jobs, so the database and the media must be shared too."""
        if not self.several_processes:
            return None
        lacking = []
        if self.database_url is None:
            lacking.append("DATABASE_URL (PostgreSQL; SQLite is one process's file)")
        if self.media_store is not MediaStoreKind.S3:
            lacking.append("MEDIA_STORE=s3 (local media is one machine's disk)")
        if not lacking:
            return None
        return (f"SHARD_IDS={','.join(map(str, self.shard_ids or []))} of SHARD_COUNT="
                f"{self.shard_count} runs several bot processes, which needs "
                + " and ".join(lacking) + ".")

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def missing_for_run(self) -> list[str]:
        """Names of settings that `run` needs and that are not set."""
        missing = []
        if self.discord_token is None or not self.discord_token.get_secret_value():
            missing.append("DISCORD_TOKEN")
        if self.evolink_api_key is None or not self.evolink_api_key.get_secret_value():
            missing.append("EVOLINK_API_KEY")
        missing.extend(self.missing_for_media())
        return missing

    def deployment_notes(self) -> list[str]:
        """What this combination of media store and callbacks needs, for `check-config`."""
        if self.media_store is MediaStoreKind.S3:
            where = f" at {self.s3_endpoint_url}" if self.s3_endpoint_url else ""
            notes = [f"Media: bucket {self.s3_bucket!r}{where}; the provider fetches inputs "
                     "through presigned links, so no public web server is needed for media."]
        else:
            notes = [f"Media: local files in {self.media_dir}, served at "
                     f"{self.public_base_url}/m/...: the provider must reach that address."]
        if self.callback_base_url is None:
            notes.append("Callbacks: off (PUBLIC_BASE_URL is not public https), polling only.")
        else:
            notes.append(f"Callbacks: on, to {self.callback_base_url}/callbacks/...")
        if self.several_processes:
            notes.append(f"Processes: this one runs shards {self.shard_ids} of "
                         f"{self.shard_count}; all processes together make at most "
                         f"{self.evolink_requests_per_second:g} EvoLink requests a second.")
        return notes

    def missing_for_media(self) -> list[str]:
        """What the media store needs: the local store is served by the bot, so the provider
        needs PUBLIC_BASE_URL to fetch inputs; S3 needs its bucket, and PUBLIC_BASE_URL only
        for callbacks (without it the tracker polls)."""
        if self.media_store is MediaStoreKind.S3:
            return [] if self.s3_bucket else ["S3_BUCKET"]
        return [] if self.public_base_url else ["PUBLIC_BASE_URL"]


def describe_validation_error(error: Exception) -> str:
    """One readable line per invalid setting, naming the environment variable."""
    if not isinstance(error, ValidationError):
        return str(error)
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location not in message else message)
    return "\n".join(lines)
