"""The e2e layer's fixture: the bot against the Discord emulator and the EvoLink simulator.

A module (or a test) changes how its stack is built with a ``stack`` mark whose keyword
arguments go to ``running_stack``, e.g. ``pytestmark = pytest.mark.stack(rate_limits=False)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.media.prober import Prober
from tests.conftest import DatabaseLocation
from tests.e2e.harness import Stack, running_stack
from tests.integration.money import assert_money_reconciles
from tests.s3_endpoint import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stack(**options): keyword arguments for running_stack (e.g. rate_limits=False)"
    )
    config.addinivalue_line(
        "markers", "money_open(reason): skip the final money check; the books are still open"
    )


@pytest.fixture
async def stack(
    tmp_path: Path, request: pytest.FixtureRequest, prober: Prober,
    database_location: DatabaseLocation,
) -> AsyncIterator[Stack]:
    """On SQLite in DATA_DIR; in modules marked `both_engines`, also in a PostgreSQL schema."""
    marker = request.node.get_closest_marker("stack")
    options = marker.kwargs if marker is not None else {}
    async with running_stack(
        tmp_path, prober, database=database_location, **options
    ) as running:
        yield running
        # Every credit the provider billed is settled, none refunded (issue 11's check).
        if running.bot is not None and request.node.get_closest_marker("money_open") is None:
            await running.bot.services.tracker.idle()
            await assert_money_reconciles(running)
