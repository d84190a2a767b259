"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.media.prober import ProbeLimits, Prober
from sandbox.demo.processes import PORT_BLOCK_ENV
from sandbox.discord_emulator.openapi import SPEC_ENV, default_spec_path
from storage.database import Database

# A PostgreSQL server for the suites marked both_engines, e.g. postgresql://postgres@127.0.0.1:5432/test.
TEST_DATABASE_URL_ENV = "KLING_TEST_DATABASE_URL"


def pytest_report_header() -> list[str]:
    spec = default_spec_path()
    lines = [
        f"Discord request bodies checked against {spec}" if spec.exists() else
        f"NOTICE: Discord's OpenAPI description is missing at {spec} (set {SPEC_ENV}): "
        "the emulator does NOT check request bodies against it"
    ]
    if not os.environ.get(TEST_DATABASE_URL_ENV):
        lines.append(
            f"NOTICE: {TEST_DATABASE_URL_ENV} is not set: the suites marked both_engines "
            "SKIP PostgreSQL"
        )
    return lines


# Ports each parallel worker (pytest-xdist's gw0, gw1, …) takes its servers' ports from,
# below the kernel's ephemeral range (32768 and up): room for 8 workers.
_PORT_BLOCKS_START, _PORT_BLOCK_SIZE = 20_000, 1_500


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_engines: run the module's `db` tests on SQLite and on PostgreSQL"
    )
    config.addinivalue_line(
        "markers", "alone: measures the machine (memory, loop lag): `make test` runs these "
        "after the parallel run, with nothing else running"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        first = _PORT_BLOCKS_START + int(worker[2:]) * _PORT_BLOCK_SIZE
        os.environ[PORT_BLOCK_ENV] = f"{first}-{first + _PORT_BLOCK_SIZE - 1}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_engines"
    ):
        metafunc.parametrize("engine", ["sqlite", "postgresql"])


@dataclass(frozen=True)
class DatabaseLocation:
    """Where a test's database lives: a SQLite file, or a fresh schema on PostgreSQL."""

    target: Path | str
    schema: str | None = None

    async def open(self, *, migrate: bool = True) -> Database:
        return await Database.open(self.target, migrate=migrate, schema=self.schema)

    def bot_settings(self) -> dict[str, str]:
        """The settings that put a whole bot here; none on SQLite, where the bot keeps its
        own file in DATA_DIR as an operator's default does."""
        if self.schema is None:
            return {}
        return {"DATABASE_URL": str(self.target), "DATABASE_SCHEMA": self.schema}


@pytest.fixture
def engine() -> str:
    """SQLite unless the module is marked `both_engines`."""
    return "sqlite"


@pytest.fixture
async def database_location(engine: str, tmp_path: Path) -> AsyncIterator[DatabaseLocation]:
    if engine == "sqlite":
        yield DatabaseLocation(tmp_path / "test.sqlite3")
        return
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not tested: set {TEST_DATABASE_URL_ENV}")
    schema = f"test_{uuid.uuid4().hex}"
    async with _created(url, f'SCHEMA "{schema}"', drop_option="CASCADE"):
        yield DatabaseLocation(url, schema)


@pytest.fixture
async def cluster_database() -> AsyncIterator[str]:
    """The URL of a database of its own on the test server, for several bot processes
    (`DATABASE_URL`): its LISTEN/NOTIFY traffic is its own too."""
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"several processes need PostgreSQL: set {TEST_DATABASE_URL_ENV}")
    name = f"kling_cluster_{uuid.uuid4().hex[:12]}"
    async with _created(url, f'DATABASE "{name}"', drop_option="WITH (FORCE)"):
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def _created(url: str, what: str, *, drop_option: str) -> AsyncIterator[None]:
    """`what` (a schema, a database) exists on the test server while inside."""
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE {what}")
        yield
        await admin.execute(f"DROP {what} {drop_option}")
    finally:
        await admin.close()


@pytest.fixture
async def db(database_location: DatabaseLocation) -> AsyncIterator[Database]:
    database = await database_location.open()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def prober() -> Iterator[Prober]:
    """One probe pool for the whole run: its workers start once, not per test.

    Tests that kill, starve or time out workers make their own (tests/integration/
    test_probe_sandbox.py), so this one stays healthy."""
    shared = Prober(ProbeLimits(workers=2, memory_bytes=512 * 1024 * 1024, timeout_s=30.0))
    shared.start()
    yield shared
    shared.close()
