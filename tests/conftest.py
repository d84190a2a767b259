"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.media.prober import ProbeLimits, Prober
from storage.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "test.sqlite3")
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
