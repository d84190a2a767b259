"""Deployment files agree with the code: Dockerfile, .dockerignore, compose, Caddy, .env.example.

No Docker engine is needed: the Dockerfile is read as text, the compose file as YAML (anchors
and merge keys applied, ${VARIABLES} substituted here where a test needs them), and the
HEALTHCHECK command is run for real against a local server.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_ONLY_MARKER = "# --- docker compose only"


# --- Dockerfile ---------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to


def dockerfile() -> list[Instruction]:
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), args.strip(), stage))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def words(args: str) -> list[str]:
    """Arguments of an instruction in exec (JSON) or shell form."""
    if args.startswith("["):
        parsed = json.loads(args)
        assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
        return parsed
    return shlex.split(args)


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def only(keyword: str, instructions: list[Instruction]) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def copy_sources() -> list[str]:
    sources: list[str] = []
    for instruction in dockerfile():
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        args = words(instruction.args)
        if any(a.startswith("--from=") for a in args):
            continue  # copies between stages, not from the build context
        paths = [a for a in args if not a.startswith("--")]
        assert len(paths) >= 2, instruction
        sources.extend(paths[:-1])
    return sources


def project_name() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    name = pyproject["project"]["name"]
    assert isinstance(name, str)
    return name


def test_the_image_is_built_in_two_stages_on_python_311_slim() -> None:
    instructions = dockerfile()
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in instructions
            if i.keyword == "ARG" and "=" in i.args}
    froms = [i.args.replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for i in instructions
             if i.keyword == "FROM"]
    assert len(froms) == 2
    assert all(f.startswith("python:3.11-slim") for f in froms), froms
    build_runs = " ".join(i.args for i in instructions if i.keyword == "RUN" and i.stage == 0)
    assert re.search(r"pip wheel --wheel-dir /wheels \.", build_runs)


def test_the_runtime_installs_only_the_built_wheels() -> None:
    [install] = [i for i in final_stage() if i.keyword == "RUN" and "pip install" in i.args]
    assert "--no-index" in install.args and "--find-links=/wheels" in install.args
    assert re.search(rf"\b{re.escape(project_name())}\s*$", install.args)
    stage_names = {
        i.args.split()[-1] for i in dockerfile() if i.keyword == "FROM" and " AS " in i.args
    }
    mount = re.search(r"--mount=type=bind,from=(\w+),source=/wheels,target=/wheels", install.args)
    assert mount is not None and mount.group(1) in stage_names


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources = copy_sources()
    assert "pyproject.toml" in sources and "bot" in sources
    for source in sources:
        if any(c in source for c in "*?["):
            continue  # a glob may match nothing when the same COPY names a real file
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert not docker_ignores(source), f"{source} is excluded by .dockerignore"
        if (ROOT / source).is_dir():
            for child in (ROOT / source).rglob("*.py"):
                relative = child.relative_to(ROOT).as_posix()
                assert not docker_ignores(relative), relative
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert package in sources, f"pyproject packages {package}, the Dockerfile does not copy it"


def test_the_runtime_runs_as_a_non_root_user() -> None:
    user = only("USER", final_stage()).args.split(":")[0]
    assert user not in ("root", "0")
    assert "useradd" in " ".join(i.args for i in final_stage() if i.keyword == "RUN")


def test_data_dir_is_a_volume_and_the_web_port_is_exposed() -> None:
    stage = final_stage()
    assert "/data" in words(only("VOLUME", stage).args)
    env = " ".join(i.args for i in stage if i.keyword == "ENV")
    assert re.search(r"\bDATA_DIR=/data\b", env)
    assert re.search(r"\bWEB_PORT=8080\b", env)
    assert words(only("EXPOSE", stage).args) == ["8080"]


def test_the_entry_point_is_the_cli_with_run_as_default_command() -> None:
    stage = final_stage()
    assert words(only("ENTRYPOINT", stage).args) == ["python", "-m", "bot"]
    assert words(only("CMD", stage).args) == ["run"]


def healthcheck_command() -> list[str]:
    args = only("HEALTHCHECK", final_stage()).args
    options, _, command = args.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    return words(command)


def test_the_healthcheck_probes_healthz_without_curl() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:" in command[2] and "/healthz" in command[2]
    assert "urllib.request" in command[2]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
async def test_the_healthcheck_command_exits_by_the_health_answer(
    status: int | None, healthy: bool
) -> None:
    async def healthz(request: web.Request) -> web.Response:
        assert status is not None
        return web.json_response({"status": "ok" if status == 200 else "unhealthy"}, status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = server.port
    if status is None:
        await server.close()  # nothing listens: connection refused
    try:
        code = healthcheck_command()[2]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env={"WEB_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        assert (await asyncio.wait_for(process.wait(), 30) == 0) is healthy
    finally:
        await server.close()


# --- .dockerignore ------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax (Go filepath.Match plus **) as a regex."""
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def docker_ignores(path: str) -> bool:
    """Last matching rule wins; a rule matching a parent directory matches its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        regex = _pattern(rule.lstrip("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", "data/kling.sqlite3", ".venv/bin/python", ".git/config",
     "tests/unit/test_settings.py", "bot/__pycache__/web.cpython-311.pyc", "bench/run.py"],
)
def test_secrets_state_and_tooling_stay_out_of_the_build_context(path: str) -> None:
    assert docker_ignores(path)


# --- .env.example -------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass
class Documented:
    value: str
    active: bool  # uncommented in the example
    compose_only: bool


def env_example() -> dict[str, Documented]:
    entries: dict[str, Documented] = {}
    compose_only = False
    previous = ""
    for line in (ROOT / ".env.example").read_text().splitlines():
        compose_only = compose_only or line.startswith(COMPOSE_ONLY_MARKER)
        match = _ASSIGNMENT.match(line)
        if match:
            comment, name, value = match.groups()
            assert name not in entries, f"{name} listed twice"
            assert previous.startswith("# ") and not _ASSIGNMENT.match(previous), (
                f"{name} needs a one-line comment above it"
            )
            entries[name] = Documented(value, comment is None, compose_only)
        previous = line
    return entries


def aliases() -> set[str]:
    names = {field.alias for field in Settings.model_fields.values()}
    assert None not in names, "every setting needs an explicit environment name"
    return {name for name in names if name is not None}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in aliases():
        monkeypatch.delenv(name, raising=False)


def test_env_example_lists_exactly_the_settings() -> None:
    entries = env_example()
    settings_names = {name for name, entry in entries.items() if not entry.compose_only}
    missing, unknown = aliases() - settings_names, settings_names - aliases()
    assert not missing and not unknown, f"missing: {sorted(missing)}, unknown: {sorted(unknown)}"
    assert not {name for name, entry in entries.items() if entry.compose_only} & aliases()


@pytest.mark.usefixtures("clean_environment")
def test_env_example_shows_the_real_defaults(tmp_path: Path) -> None:
    defaults = Settings(_env_file=None)
    by_alias = {field.alias: name for name, field in Settings.model_fields.items()}
    uncommented = []
    for alias, entry in env_example().items():
        if entry.compose_only:
            continue
        field = by_alias[alias]
        if entry.value == "":
            assert getattr(defaults, field) is None, f"{alias} has a default to show"
        else:
            assert not entry.active, f"{alias} should stay commented so the code default rules"
            uncommented.append(f"{alias}={entry.value}")
    # Uncommenting every default changes nothing: they are the values the code uses.
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(uncommented) + "\n")
    loaded = Settings(_env_file=env_file)
    assert loaded.model_dump() == defaults.model_dump()


@pytest.mark.usefixtures("clean_environment")
def test_a_copied_env_example_loads_and_names_what_is_missing() -> None:
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.missing_for_run() == ["DISCORD_TOKEN", "EVOLINK_API_KEY", "PUBLIC_BASE_URL"]


# --- docker-compose.yml and the Caddyfile -------------------------------------------


def compose() -> dict[str, Any]:
    # safe_load applies YAML merge keys (`<<: *cluster-bot`) as Compose does.
    parsed = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(parsed, dict)
    return parsed


def default_services() -> dict[str, Any]:
    """What a plain `docker compose up` starts: the services of no profile."""
    return {name: s for name, s in compose()["services"].items() if "profiles" not in s}


def test_compose_runs_the_bot_behind_caddy() -> None:
    services = default_services()
    assert set(services) == {"bot", "caddy"}
    bot, caddy = services["bot"], services["caddy"]
    assert bot["build"] == "." and bot["env_file"] == ".env"
    assert "ports" not in bot, "the bot is reached through Caddy only"
    assert bot["expose"] == ["8080", "9108"]
    assert bot["environment"]["WEB_PORT"] == "8080"
    # /metrics on its own port, reachable on the compose network but never through Caddy.
    assert bot["environment"]["METRICS_PORT"] == "9108"
    assert bot["environment"]["METRICS_HOST"] == "0.0.0.0"
    assert bot["environment"]["DATA_DIR"] == "/data"
    assert bot["environment"]["PUBLIC_BASE_URL"].startswith("https://${BOT_DOMAIN")
    assert any(v.endswith(":/data") for v in bot["volumes"])
    assert caddy["image"].startswith("caddy:2")
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    named = {v.split(":")[0] for s in compose()["services"].values()
             for v in s.get("volumes", []) if not v.startswith(".")}
    assert named == set(compose()["volumes"])


def test_compose_and_caddy_variables_are_documented() -> None:
    entries = env_example()
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for name in set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text)):
        assert name in entries, f"compose uses ${{{name}}}, .env.example does not list it"
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    caddy_env = compose()["services"]["caddy"]["environment"]
    used = set(re.findall(r"\{\$([A-Z0-9_]+)", caddyfile))
    assert used and used <= set(caddy_env)
    assert re.findall(r"reverse_proxy\s+(\S+)", caddyfile) == ["bot:8080"]


# --- profile cluster ----------------------------------------------------------------

CLUSTER_SHARDS = {"bot-shard-0": [0], "bot-shard-1": [1]}
# What an operator puts in .env for the cluster (README, "Scaling out").
CLUSTER_ENV = {"POSTGRES_PASSWORD": "pw123", "AWS_ACCESS_KEY_ID": "kling",
               "AWS_SECRET_ACCESS_KEY": "secret123", "BOT_DOMAIN": "bot.example.org"}
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def resolved(name: str) -> dict[str, Any]:
    """A service as compose runs it, its ${VARIABLES} taken from CLUSTER_ENV."""
    service = dict(compose()["services"][name])
    service["environment"] = {
        key: _VARIABLE.sub(lambda m: CLUSTER_ENV[m.group(1)], value)
        for key, value in (service.get("environment") or {}).items()
    }
    return service


def test_the_cluster_profile_adds_postgres_minio_and_two_shards_and_publishes_nothing() -> None:
    services = compose()["services"]
    cluster = {name for name, s in services.items() if "profiles" in s}
    assert cluster == {"postgres", "minio", "minio-bucket", "bot-migrate", *CLUSTER_SHARDS}
    for name in cluster:
        assert services[name]["profiles"] == ["cluster"]
        assert "ports" not in services[name], f"{name} is reached on the compose network only"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["minio"]["image"].startswith("minio/minio:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["minio"]["healthcheck"]["test"][1:] == ["mc", "ready", "local"]


def test_the_schema_and_the_bucket_exist_before_either_shard_starts() -> None:
    migrate = resolved("bot-migrate")
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    bucket = resolved("minio-bucket")
    assert bucket["command"][0] == "mb" and "--ignore-existing" in bucket["command"]
    assert bucket["depends_on"] == {"minio": {"condition": "service_healthy"}}
    for name in CLUSTER_SHARDS:
        assert resolved(name)["depends_on"] == {
            "bot-migrate": {"condition": "service_completed_successfully"},
            "minio-bucket": {"condition": "service_completed_successfully"},
        }
        image_command = words(only("CMD", final_stage()).args)
        assert resolved(name).get("command", image_command) == ["run"]
        assert resolved(name)["restart"] == "unless-stopped"


def test_a_plain_up_needs_no_variable_of_the_cluster() -> None:
    """Compose substitutes every variable of the file before it looks at profiles: a
    required one (`${X:?…}`) in a cluster service would stop the default deployment."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{([A-Z0-9_]+):?\?", text)) == {"BOT_DOMAIN"}


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(("name", "shard_ids"), CLUSTER_SHARDS.items())
def test_each_shard_process_gets_valid_settings_for_the_shared_database_and_bucket(
    name: str, shard_ids: list[int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    shard = resolved(name)
    assert shard["env_file"] == ".env"
    secrets = {"DISCORD_TOKEN": "t", "EVOLINK_API_KEY": "k"}  # the operator's, in .env
    for key, value in {**shard["environment"], **secrets}.items():
        monkeypatch.setenv(key, value)  # environment wins over env_file, as in compose
    settings = Settings(_env_file=ROOT / ".env.example")

    assert settings.missing_for_run() == [], "S3 and polling need no PUBLIC_BASE_URL"
    assert settings.shard_count == 2 and settings.shard_ids == shard_ids
    database = urlsplit(str(settings.database))
    postgres = compose()["services"]["postgres"]["environment"]
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert database.password == CLUSTER_ENV["POSTGRES_PASSWORD"]
    assert settings.media_store.value == "s3"
    assert settings.s3_endpoint_url == "http://minio:9000"
    created = resolved("minio-bucket")["command"][-1]
    assert created == f"cluster/{settings.s3_bucket}"
    assert resolved("minio-bucket")["environment"]["MC_HOST_cluster"] == (
        "http://kling:secret123@minio:9000"
    )
    minio = resolved("minio")["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == ("kling", "secret123")
