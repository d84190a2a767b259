"""A process under load keeps its PostgreSQL connections: a new server backend (a fork, an
authentication, asyncpg's setup) for every few statements cost more than the statements."""

from __future__ import annotations

import asyncio
import os

import pytest

from storage.database import Database
from storage.engines import POOL_SIZE
from tests.conftest import TEST_DATABASE_URL_ENV

AT_ONCE = 20  # more than SQLAlchemy's default pool kept (5), as the tracker's 16 slots are
ROUNDS = 25


async def test_statements_at_once_reuse_the_connections_they_opened() -> None:
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not tested: set {TEST_DATABASE_URL_ENV}")
    db = await Database.open(url, migrate=False)
    backends: set[int] = set()

    async def caller() -> None:
        for _ in range(ROUNDS):
            [row] = await db.fetch("SELECT pg_backend_pid()")
            backends.add(int(row[0]))

    try:
        await asyncio.gather(*(caller() for _ in range(AT_ONCE)))
    finally:
        await db.close()
    assert len(backends) <= max(AT_ONCE, POOL_SIZE)
