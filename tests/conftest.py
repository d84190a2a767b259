"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
