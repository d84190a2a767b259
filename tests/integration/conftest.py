"""The integration layer's fixture: the engine and its services against the EvoLink simulator.

``harness.start(**overrides)`` builds and starts the services; tests that need other settings
pass them there. Every test that leaves the services running ends with the money check of
issue 11: each credit the simulator billed was settled by the bot, and no billed task was
refunded (`tests/integration/money.py`). A test whose last word is deliberately not settled
yet (a task still running, a moderator's decision pending) says so with
``@pytest.mark.money_open("why")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.media.prober import Prober
from tests.conftest import DatabaseLocation
from tests.integration.engine_harness import Harness, running_harness
from tests.integration.money import assert_money_reconciles
from tests.s3_endpoint import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "money_open(reason): skip the final money check; the books are still open"
    )


@pytest.fixture
def second(harness: Harness) -> Harness:
    """A second process beside `harness`: its own data dir, port and services; the same
    provider and files (tests/integration/two_processes.py)."""
    return Harness(harness.tmp_path / "second", harness.sim, harness.files, harness.prober)


@pytest.fixture
async def harness(
    tmp_path: Path, request: pytest.FixtureRequest, prober: Prober,
    database_location: DatabaseLocation,
) -> AsyncIterator[Harness]:
    """On SQLite in DATA_DIR; in modules marked `both_engines`, also in a PostgreSQL schema."""
    async with running_harness(tmp_path, prober=prober, database=database_location) as running:
        yield running
        if running.services is not None and request.node.get_closest_marker("money_open") is None:
            await running.live.tracker.idle()
            await assert_money_reconciles(running)
