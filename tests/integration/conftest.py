"""The integration layer's fixture: the engine and its services against the EvoLink simulator.

``harness.start(**overrides)`` builds and starts the services; tests that need other settings
pass them there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.engine_harness import Harness, running_harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path) as running:
        yield running
