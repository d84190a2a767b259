"""Starting the services is all or nothing: a failure half-way closes what was opened."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.jobs.recovery import Recovery
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines


def running_coroutines() -> set[str]:
    return {
        task.get_coro().__qualname__  # type: ignore[union-attr]
        for task in asyncio.all_tasks()
        if not task.done()
    }


async def test_a_failure_while_resuming_closes_the_web_server_and_the_lag_monitor(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_resume(self: Recovery) -> int:
        assert "LoopLagMonitor._run" in running_coroutines()  # opened before resuming
        raise RuntimeError("disk gone")

    monkeypatch.setattr(Recovery, "resume", broken_resume)
    with pytest.raises(RuntimeError, match="disk gone"):
        await harness.start()

    assert "LoopLagMonitor._run" not in running_coroutines()
    with socket.socket() as probe:  # the web server let go of its port
        probe.bind(("127.0.0.1", harness.port))
    # and the same settings start cleanly afterwards
    monkeypatch.undo()
    services = await harness.start()
    assert await services.jobs.count_by_state() == {}


async def test_one_of_several_processes_does_not_start_on_local_media(
    harness: Harness,
) -> None:
    # On SQLite it also names DATABASE_URL; on PostgreSQL, local media is what is missing.
    with pytest.raises(ValueError, match="runs several bot processes, which needs") as refused:
        await harness.start(SHARD_COUNT="2", SHARD_IDS="0")
    assert "MEDIA_STORE=s3" in str(refused.value)
    assert harness.services is None
