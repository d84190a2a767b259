from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.evolink.spec import EditModel
from bot.jobs.config import EngineConfig
from bot.settings import Settings, describe_validation_error


def load(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        alias = Settings.model_fields[name].alias
        if alias:
            monkeypatch.delenv(alias, raising=False)


def test_defaults_follow_the_configuration_contract() -> None:
    settings = load()
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.evolink_base_url == "https://api.evolink.ai"
    assert settings.evolink_model is EditModel.STANDARD
    assert (settings.web_host, settings.web_port) == ("0.0.0.0", 8080)
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9108)
    assert settings.data_dir == Path("./data")
    assert settings.discord_gateway_url is None
    assert settings.uses_real_discord


def test_database_url_selects_postgresql_and_its_password_stays_hidden() -> None:
    assert load(DATA_DIR="/srv/bot").database == Path("/srv/bot/kling.sqlite3")
    url = "postgresql://kling:pg-secret@db.internal:5432/kling"
    settings = load(DATABASE_URL=url)
    assert settings.database == url
    assert settings.database_password == "pg-secret"
    assert "pg-secret" not in repr(settings)
    assert settings.database_schema is None  # the server's search path, normally `public`
    assert load(DATABASE_URL=url, DATABASE_SCHEMA="kling_eu").database_schema == "kling_eu"


def test_reads_environment_and_keeps_secrets_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret")
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-evo-secret")
    monkeypatch.setenv("EVOLINK_MODEL", "kling-o1-video-edit-fast")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.example.org/")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "discord-secret"
    assert "sk-evo-secret" not in repr(settings) and "discord-secret" not in str(settings)
    assert settings.public_base_url == "https://bot.example.org"
    assert settings.missing_for_run() == []


def test_reads_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EVOLINK_API_KEY=from-file\nWEB_PORT=9000\n")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.evolink_api_key is not None
    assert settings.evolink_api_key.get_secret_value() == "from-file"
    assert settings.web_port == 9000


@pytest.mark.parametrize(
    ("model", "low", "high"),
    [("kling-o1-video-edit", 3, 10), ("kling-o1-video-edit-fast", 6, 20)],
)
def test_model_limits_follow_the_model(model: str, low: int, high: int) -> None:
    spec = load(EVOLINK_MODEL=model).model_spec
    assert (spec.name, spec.min_seconds, spec.max_seconds) == (model, low, high)


def test_enabled_models_put_the_default_first_whatever_the_listed_order() -> None:
    assert [spec.name for spec in load().model_specs] == ["kling-o1-video-edit"]
    both = load(EVOLINK_MODEL="kling-o1-video-edit-fast",
                EVOLINK_MODELS=" kling-o1-video-edit , kling-o1-video-edit-fast ,")
    assert [spec.name for spec in both.model_specs] == [
        "kling-o1-video-edit-fast", "kling-o1-video-edit"
    ]
    assert load(EVOLINK_MODELS="").model_specs == load().model_specs  # blank: unset


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUBLIC_BASE_URL": "bot.example.org"}, "PUBLIC_BASE_URL must be an absolute http(s) URL"),
        ({"PUBLIC_BASE_URL": "ftp://x.org"}, "PUBLIC_BASE_URL must be an absolute http(s) URL"),
        ({"DISCORD_API_BASE": "discord"}, "DISCORD_API_BASE must be an absolute http(s) URL"),
        ({"EVOLINK_BASE_URL": "/v1"}, "EVOLINK_BASE_URL must be an absolute http(s) URL"),
        ({"DISCORD_GATEWAY_URL": "http://x"}, "DISCORD_GATEWAY_URL must be an absolute ws(s) URL"),
        ({"DATABASE_URL": "mysql://u:pw@h/db"}, "DATABASE_URL must be a postgresql:// URL"),
        ({"DATABASE_SCHEMA": "kling"}, "DATABASE_SCHEMA needs DATABASE_URL"),
        (
            {"DATABASE_URL": "postgresql://h/db", "DATABASE_SCHEMA": 'kling"; DROP'},
            "DATABASE_SCHEMA must be a lowercase name",
        ),
        (
            {"DATABASE_URL": "postgresql://h/db", "DATABASE_SCHEMA": "Kling"},
            "DATABASE_SCHEMA must be a lowercase name",
        ),
        ({"EVOLINK_MODEL": "kling-v2"}, "EVOLINK_MODEL"),
        (
            {"EVOLINK_MODELS": "kling-o1-video-edit,kling-v2"},
            "EVOLINK_MODELS names unknown model(s) kling-v2; known: kling-o1-video-edit, "
            "kling-o1-video-edit-fast",
        ),
        (
            {"EVOLINK_MODELS": "kling-o1-video-edit-fast"},
            "EVOLINK_MODEL (kling-o1-video-edit), the default choice, must be one of "
            "EVOLINK_MODELS (kling-o1-video-edit-fast)",
        ),
        (
            {"EVOLINK_MODELS": "kling-o1-video-edit, kling-o1-video-edit"},
            "EVOLINK_MODELS lists a model twice",
        ),
        ({"WEB_PORT": "70000"}, "WEB_PORT"),
        ({"WEB_PORT": "eighty"}, "WEB_PORT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be"),
        ({"DEFAULT_DAILY_SECONDS": "-1"}, "DEFAULT_DAILY_SECONDS"),
        (
            {"DEFAULT_DAILY_SECONDS": "9000", "CEILING_DAILY_SECONDS": "100"},
            "DEFAULT_DAILY_SECONDS (9000) exceeds CEILING_DAILY_SECONDS (100)",
        ),
        (
            {"POLL_MIN_INTERVAL_SECONDS": "90", "POLL_MAX_INTERVAL_SECONDS": "10"},
            "POLL_MIN_INTERVAL_SECONDS must not exceed",
        ),
        ({"SHARD_IDS": "0,1"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1,2"}, "distinct numbers from 0 to 1"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1,1"}, "distinct numbers from 0 to 1"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "one"}, "SHARD_IDS must be numbers like 0,1"),
    ],
)
def test_each_invalid_setting_gets_a_message_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(**env)
    assert message in describe_validation_error(caught.value)


def test_shard_ids_are_read_as_a_comma_list() -> None:
    assert load(SHARD_COUNT="4", SHARD_IDS="2, 3").shard_ids == [2, 3]
    assert load(SHARD_COUNT="4").shard_ids is None


def test_missing_run_settings_are_listed() -> None:
    assert load().missing_for_run() == ["DISCORD_TOKEN", "EVOLINK_API_KEY", "PUBLIC_BASE_URL"]


@pytest.mark.parametrize(
    ("url", "callbacks"),
    [
        ("https://bot.example.org", True),
        ("http://bot.example.org", False),
        ("https://127.0.0.1:8080", False),
        ("https://10.0.0.5", False),
        ("https://localhost", False),
        ("https://bot", False),
    ],
)
def test_callbacks_only_for_public_https(url: str, callbacks: bool) -> None:
    assert (load(PUBLIC_BASE_URL=url).callback_base_url is not None) is callbacks


KEYS = {"DISCORD_TOKEN": "t", "EVOLINK_API_KEY": "k"}


@pytest.mark.parametrize(
    ("env", "missing", "notes"),
    [
        pytest.param({}, ["PUBLIC_BASE_URL"], [], id="local media needs the bot's public URL"),
        pytest.param({"MEDIA_STORE": "s3"}, ["S3_BUCKET"], [], id="s3 needs its bucket"),
        pytest.param(
            {"MEDIA_STORE": "s3", "S3_BUCKET": "clips"}, [],
            ["no public web server is needed", "Callbacks: off"],
            id="s3 with polling needs no public server",
        ),
        pytest.param(
            {"MEDIA_STORE": "s3", "S3_BUCKET": "clips",
             "PUBLIC_BASE_URL": "https://bot.example.org"}, [],
            ["presigned links", "Callbacks: on, to https://bot.example.org"],
            id="s3 with callbacks",
        ),
        pytest.param(
            {"PUBLIC_BASE_URL": "http://10.0.0.5:8080"}, [],
            ["served at http://10.0.0.5:8080/m/", "Callbacks: off"],
            id="local media behind a private address polls",
        ),
    ],
)
def test_what_each_media_and_callback_combination_needs(
    env: dict[str, str], missing: list[str], notes: list[str]
) -> None:
    settings = load(**KEYS, **env)
    assert settings.missing_for_run() == missing
    if not missing:
        said = "\n".join(settings.deployment_notes())
        assert all(note in said for note in notes), said


def test_check_config_says_what_the_media_store_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in {**KEYS, "MEDIA_STORE": "s3"}.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 2
    assert "S3_BUCKET" in capsys.readouterr().err

    monkeypatch.setenv("S3_BUCKET", "clips")
    assert main(["check-config"]) == 0
    said = capsys.readouterr().out
    assert "no public web server is needed" in said and "polling only" in said


@pytest.mark.parametrize(
    ("env", "lacking"),
    [
        pytest.param({}, ["DATABASE_URL", "MEDIA_STORE=s3"], id="sqlite and local media"),
        pytest.param({"MEDIA_STORE": "s3", "S3_BUCKET": "clips"}, ["DATABASE_URL"],
                     id="sqlite"),
        pytest.param({"DATABASE_URL": "postgresql://db/kling",
                      "PUBLIC_BASE_URL": "https://bot.example.org"}, ["MEDIA_STORE=s3"],
                     id="local media"),
    ],
)
def test_check_config_refuses_several_processes_without_shared_storage(
    env: dict[str, str], lacking: list[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    for name, value in {"PUBLIC_BASE_URL": "https://bot.example.org", **KEYS, **env,
                        "SHARD_COUNT": "4", "SHARD_IDS": "0,1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 2
    said = capsys.readouterr().err
    assert "several bot processes" in said
    assert all(name in said for name in lacking), said


def test_several_processes_are_named_by_their_shards() -> None:
    shared = {**KEYS, "MEDIA_STORE": "s3", "S3_BUCKET": "clips",
              "DATABASE_URL": "postgresql://db/kling", "EVOLINK_REQUESTS_PER_SECOND": "6"}
    first = load(**shared, SHARD_COUNT="4", SHARD_IDS="0")
    rest = load(**shared, SHARD_COUNT="4", SHARD_IDS="3,1,2")
    assert first.refused_for_processes() is None
    assert (first.process_name, rest.process_name) == ("shards-0", "shards-1-2-3")
    alone = load(**shared, SHARD_COUNT="4", SHARD_IDS="0,1,2,3")
    assert not alone.several_processes and alone.process_name == "bot"
    said = "\n".join(first.deployment_notes())
    assert "all processes together make at most 6 EvoLink requests a second" in said


def test_member_downloads_have_a_rate_floor_that_can_be_turned_off() -> None:
    config = EngineConfig.from_settings(load())
    assert (config.intake.min_rate, config.intake.total_timeout) == (32_000, 300.0)
    off = EngineConfig.from_settings(load(DOWNLOAD_MIN_KB_PER_SECOND="0"))
    assert off.intake.min_rate == 0
