"""What the simulator bills and reports (issue 11): usage on queries, the credit balance
through completion, failure and a completion without results, 402, and the rounding rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.evolink_sim import MODELS, EvolinkSimulator, TaskScript
from sandbox.evolink_sim.media_check import container_duration_s
from sandbox.evolink_sim.testing import CallbackReceiver, MediaServer
from sandbox.media_samples import make_mp4

from .sim_client import SimClient

STANDARD = MODELS["kling-o1-video-edit"]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evolink-sim-money")
    # 6001 frames at 2000 fps: the container says 3.0005 s (issue 11, item 7).
    make_mp4(root / "just-over-3.mp4", 3.0005, width=16, height=16, fps=2000, codec="mpeg4")
    return root


@pytest.fixture
async def frozen() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(time_scale=0, credits=1000, allow_insecure_callbacks=True) as s:
        yield s


@pytest.fixture
def client(http: aiohttp.ClientSession, frozen: EvolinkSimulator) -> SimClient:
    return SimClient(http, frozen)


def script(**fields: Any) -> TaskScript:
    return TaskScript(check_inputs=False, video_duration=5, **fields)


# --- usage on queries ---------------------------------------------------------------------

USAGE = {"billing_rule": "per_second", "credits_reserved": 60, "user_group": "default"}


async def test_queries_and_callbacks_echo_usage_unless_switched_off(
    frozen: EvolinkSimulator, client: SimClient
) -> None:
    async with CallbackReceiver() as receiver:
        frozen.set_default_script(script(processing_s=10))
        echoed = await client.create_ok(callback_url=receiver.url())
        frozen.echo_usage = False
        silent = await client.create_ok(callback_url=receiver.url())
        _, body = await client.query(silent)
        assert "usage" not in body  # §2.1: "may or may not be echoed"
        frozen.echo_usage = True
        _, body = await client.query(echoed)
        assert body["usage"] == USAGE
        assert body["task_info"] == {"can_cancel": True, "estimated_time": 30, "video_duration": 5}
        status, _ = await client.control("/config", {"echo_usage": False})
        assert status == 200 and frozen.stats()["echo_usage"] is False
        frozen.advance(10)
        for task_id in (echoed, silent):
            await frozen.wait_until_settled(task_id)
        assert [("usage" in c.body) for c in receiver.received] == [False, False]
        frozen.echo_usage = True
        _, body = await client.query(echoed)
        assert body["usage"] == USAGE and body["task_info"]["video_duration"] == 5


# --- the balance --------------------------------------------------------------------------


async def test_balance_moves_exactly_as_billed(frozen: EvolinkSimulator, client: SimClient) -> None:
    frozen.script_next_task(script(processing_s=10))  # completed: 60
    frozen.script_next_task(script(processing_s=20, outcome="failed"))  # released
    frozen.script_next_task(script(processing_s=30, results="missing"))  # billed: 60
    done, failed, empty = [await client.create_ok() for _ in range(3)]
    # Reservations hold credits back from new creates but are not billed (§7): the balance
    # `GET /v1/credits` reports only moves when a task is billed.
    assert frozen.ledger.reserved == 180
    assert await client.used_and_remaining() == (0, 1000)
    frozen.advance(10)
    await frozen.wait_until_settled(done)
    assert await client.used_and_remaining() == (60, 940)
    frozen.advance(10)
    await frozen.wait_until_settled(failed)
    assert await client.used_and_remaining() == (60, 940)
    frozen.advance(10)
    await frozen.wait_until_settled(empty)
    _, body = await client.query(empty)
    assert body["status"] == "completed" and "results" not in body
    assert await client.used_and_remaining() == (120, 880)
    assert frozen.ledger.reserved == 0
    assert frozen.stats()["credits"] == {
        "total": 1000,
        "remaining": 880,
        "used": 120,
        "reserved": 0,
    }


async def test_create_is_402_when_running_reservations_leave_too_little(
    frozen: EvolinkSimulator, client: SimClient
) -> None:
    status, _ = await client.control("/config", {"credits": 130})
    assert status == 200 and frozen.credits == 130
    # Length unknown until probed: the longest billable clip is held, 10 s × 12 = 120.
    frozen.set_default_script(TaskScript(check_inputs=False, processing_s=100))
    first = await client.create_ok()
    assert await client.used_and_remaining() == (0, 130)  # looks like enough for one more
    refused = await client.create()
    assert refused.status == 402
    assert (await refused.json())["error"]["code"] == "insufficient_quota"
    assert len(frozen.tasks) == 1
    frozen.fail_now(first)  # the reservation is released
    assert await client.create_ok() and await client.used_and_remaining() == (0, 130)


# --- one rounding rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [(3.0, 3), (3.0000004, 3), (3.000001, 4), (3.0005, 4), (4.2, 5), (0.1 + 0.2 + 3.7, 4)],
)
def test_billing_rounds_every_started_microsecond_up(duration: float, seconds: int) -> None:
    # §7: "rounded up" (O3 pages); the container length is whole µs, so below 1 µs is noise.
    assert STANDARD.billed_seconds(duration) == seconds


async def test_a_real_clip_of_3_0005_s_is_billed_4_s(
    http: aiohttp.ClientSession, media_dir: Path
) -> None:
    clip = media_dir / "just-over-3.mp4"
    assert container_duration_s(clip.read_bytes()) == 3.0005
    async with (
        MediaServer(media_dir) as media,
        EvolinkSimulator(time_scale=1000, allow_private_urls=True) as sim,
    ):
        client = SimClient(http, sim)
        task_id = await client.create_ok(media.url("just-over-3.mp4"))
        await sim.wait_until_settled(task_id)
        _, body = await client.query(task_id)
        assert body["task_info"]["video_duration"] == 4
        assert body["usage"]["credits_reserved"] == 48
        assert sim.tasks[task_id].video_duration_s == 3.0005
        assert (await client.used_and_remaining())[0] == 48
