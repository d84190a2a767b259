"""Callback delivery (EVOLINK_API.md §5): payload, retries, drop/duplicate modes, URL rules."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from sandbox.evolink_sim.testing import CallbackReceiver

API_KEY = "sk-evo-test"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
VIDEO = "https://cdn.example.com/clip.mp4"  # inputs are not checked in this file


@pytest.fixture
async def sim() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(
        api_key=API_KEY, time_scale=1000, allow_insecure_callbacks=True
    ) as s:
        s.set_default_script(TaskScript(check_inputs=False, video_duration=5))
        yield s


async def create(
    http: aiohttp.ClientSession, sim: EvolinkSimulator, callback_url: str | None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"model": "kling-o1-video-edit", "prompt": "x", "video_urls": [VIDEO]}
    if callback_url is not None:
        body["callback_url"] = callback_url
    async with http.post(sim.base_url + "/v1/videos/generations", json=body, headers=AUTH) as r:
        return r.status, await r.json()


async def query(http: aiohttp.ClientSession, sim: EvolinkSimulator, task_id: str) -> Any:
    async with http.get(f"{sim.base_url}/v1/tasks/{task_id}", headers=AUTH) as r:
        return await r.json()


async def test_completed_task_posts_the_query_body(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with CallbackReceiver() as hooks:
        _, task = await create(http, sim, hooks.url("/evolink/job-7/s3cret"))
        attempts = await sim.wait_for_callbacks(task["id"], 1)
        await sim.wait_until_settled(task["id"])
        assert [(a.attempt, a.status) for a in attempts] == [(1, 200)]
        (received,) = hooks.received
        assert received.path == "/evolink/job-7/s3cret"
        assert received.headers["Content-Type"].startswith("application/json")
        assert not any(h.lower() in ("authorization", "x-signature") for h in received.headers)
        assert received.body == await query(http, sim, task["id"])
        assert received.body["status"] == "completed" and received.body["results"]
    assert sim.request_counts(task["id"]) == {"create": 1, "get": 1, "callback": 1}


async def test_failed_task_callback_carries_the_error(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim.script_next_task(
        TaskScript(outcome="failed", error_code="generation_failed_no_content", check_inputs=False)
    )
    async with CallbackReceiver() as hooks:
        _, task = await create(http, sim, hooks.url())
        await sim.wait_for_callbacks(task["id"], 1)
        body = hooks.received[0].body
    assert body["status"] == "failed" and body["progress"] == 0
    assert body["error"]["code"] == "generation_failed_no_content"
    assert body["error"]["type"] == "task_error"


async def test_non_2xx_is_retried_until_a_2xx(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with CallbackReceiver([500, 200]) as hooks:
        _, task = await create(http, sim, hooks.url())
        attempts = await sim.wait_for_callbacks(task["id"], 1, successful=True)
        await sim.wait_until_settled(task["id"])
        assert [(a.attempt, a.status) for a in attempts] == [(1, 500), (2, 200)]
        assert [r.answered for r in hooks.received] == [500, 200]
        # The retry waited 1 provider second (1 ms of real time at this time_scale).
        assert attempts[1].at - attempts[0].at >= 1.0
    assert sim.request_counts(task["id"])["callback"] == 2


async def test_delivery_gives_up_after_four_attempts(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with CallbackReceiver(default_status=503) as hooks:
        _, task = await create(http, sim, hooks.url())
        await sim.wait_until_settled(task["id"])
        log = sim.tasks[task["id"]].callback_log
        assert [a.status for a in log] == [503] * 4
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(log)]
        assert all(gap >= want for gap, want in zip(gaps, (1, 2, 4), strict=True)), gaps
        assert len(hooks.received) == 4


async def test_timeouts_and_refused_connections_are_retried(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        EvolinkSimulator(
            api_key=API_KEY, time_scale=1000, allow_insecure_callbacks=True, callback_timeout_s=0.2
        ) as sim,
        CallbackReceiver(["hang", 204]) as hooks,
    ):
        sim.set_default_script(TaskScript(check_inputs=False))
        _, task = await create(http, sim, hooks.url())
        attempts = await sim.wait_for_callbacks(task["id"], 2)
        assert attempts[0].status is None and (attempts[0].error or "").endswith("TimeoutError")
        assert attempts[1].status == 204

        closed = CallbackReceiver()
        await closed.start()
        dead_url = closed.url()
        await closed.stop()
        _, task = await create(http, sim, dead_url)
        await sim.wait_until_settled(task["id"])
        log = sim.tasks[task["id"]].callback_log
        assert len(log) == 4 and all(a.status is None and a.error for a in log)


async def test_drop_mode_never_sends(sim: EvolinkSimulator, http: aiohttp.ClientSession) -> None:
    sim.script_next_task(TaskScript(callback="drop", check_inputs=False))
    async with CallbackReceiver() as hooks:
        _, task = await create(http, sim, hooks.url())
        await sim.wait_until_settled(task["id"])
        assert hooks.received == [] and sim.tasks[task["id"]].status == "completed"
        with pytest.raises(AssertionError, match="0 of 1"):
            await sim.wait_for_callbacks(task["id"], 1)
    assert sim.request_counts(task["id"])["callback"] == 0


async def test_duplicate_mode_sends_twice(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim.script_next_task(TaskScript(callback="duplicate", check_inputs=False))
    async with CallbackReceiver() as hooks:
        _, task = await create(http, sim, hooks.url())
        attempts = await sim.wait_for_callbacks(task["id"], 2)
        assert [(a.delivery, a.status) for a in attempts] == [(1, 200), (2, 200)]
        first, second = hooks.received
        assert first.body == second.body and first.body["id"] == task["id"]


async def test_complete_now_fires_the_callback(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim.script_next_task(TaskScript(processing_s=1e9, check_inputs=False))
    async with CallbackReceiver() as hooks:
        _, task = await create(http, sim, hooks.url())
        sim.complete_now(task["id"])
        await sim.wait_for_callbacks(task["id"], 1)
        assert hooks.received[0].body["status"] == "completed"


async def test_task_without_callback_url_settles_quietly(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    _, task = await create(http, sim, None)
    await sim.wait_until_settled(task["id"])
    assert sim.tasks[task["id"]].callback_log == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "https://127.0.0.1:9/hook", "http://hooks.example.com/hook"],
)
async def test_insecure_callbacks_are_refused_by_default(
    http: aiohttp.ClientSession, url: str
) -> None:
    async with EvolinkSimulator(api_key=API_KEY) as sim:
        status, body = await create(http, sim, url)
    assert status == 400 and "callback_url" in body["error"]["message"]
    assert sim.tasks == {}


async def test_insecure_mode_still_refuses_private_networks(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await create(http, sim, "http://192.168.0.10/hook")
    assert status == 400 and "private" in body["error"]["message"]


async def test_public_callback_is_accepted_but_never_sent_off_machine(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with EvolinkSimulator(api_key=API_KEY, time_scale=1000) as sim:
        sim.set_default_script(TaskScript(check_inputs=False))
        with caplog.at_level(logging.WARNING):
            status, task = await create(http, sim, "https://hooks.example.com/evolink")
            assert status == 200
            await sim.wait_until_settled(task["id"])
    assert sim.tasks[task["id"]].callback_log == []
    assert "non-loopback" in caplog.text
