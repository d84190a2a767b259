"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.media.prober import ProbeLimits, Prober
from sandbox.discord_emulator.openapi import SPEC_ENV, default_spec_path
from storage.database import Database


def pytest_report_header() -> str:
    spec = default_spec_path()
    if spec.exists():
        return f"Discord request bodies checked against {spec}"
    return (
        f"NOTICE: Discord's OpenAPI description is missing at {spec} (set {SPEC_ENV}): "
        "the emulator does NOT check request bodies against it"
    )


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
