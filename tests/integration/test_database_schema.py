"""DATABASE_SCHEMA: an operator puts the bot's tables in a PostgreSQL schema of their own."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.database import Database
from tests.conftest import TEST_DATABASE_URL_ENV


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not tested: set {TEST_DATABASE_URL_ENV}")
    yield url


async def test_migrate_creates_the_named_schema_and_puts_every_table_there(
    server_url: str,
) -> None:
    schema = f"test_{uuid.uuid4().hex}"  # does not exist yet
    admin = await asyncpg.connect(server_url)
    try:
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "migrate",
            env={**os.environ, "DATABASE_URL": server_url, "DATABASE_SCHEMA": schema},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await migrate.communicate()
        assert migrate.returncode == 0, output.decode()
        assert "schema revision is now" in output.decode()
        tables = {
            row["table_name"] for row in await admin.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                schema,
            )
        }
        assert {"jobs", "quota_ledger", "media_objects", "alembic_version"} <= tables
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.mark.parametrize(
    ("target", "schema", "refusal"),
    [
        ("postgresql://127.0.0.1/test", 'x"; DROP TABLE jobs; --', "not a schema name"),
        ("kling.sqlite3", "kling", "a schema is for PostgreSQL"),
    ],
)
async def test_a_schema_the_database_cannot_take_as_is_is_refused_before_connecting(
    target: str, schema: str, refusal: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=refusal):
        await Database.open(target if "://" in target else tmp_path / target, schema=schema)
    assert not (tmp_path / target).exists()


async def test_processes_starting_together_migrate_one_after_the_other(
    server_url: str,
) -> None:
    """Two processes' start-up migrations on one new schema at once: one applies them, the
    other waits and finds the schema up to date (no "already exists" for either)."""
    schema = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(server_url)
    try:
        opened = await asyncio.gather(
            *(Database.open(server_url, schema=schema) for _ in range(4)),
            return_exceptions=True,
        )
        for database in opened:
            if isinstance(database, Database):
                await database.close()
        assert [type(d) for d in opened] == [Database] * 4, opened
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
