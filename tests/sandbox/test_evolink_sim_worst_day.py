"""The provider's worst day (issue 11): a proxy failing a create after the task was made,
transient 404s on queries, completions without results, result links down for a while.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from sandbox.evolink_sim.testing import CallbackReceiver

from .sim_client import AUTH, SimClient

FIVE_SECONDS = TaskScript(check_inputs=False, video_duration=5)  # billed 60 credits


@pytest.fixture
async def sim() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(time_scale=1000, allow_insecure_callbacks=True) as s:
        s.set_default_script(FIVE_SECONDS)
        yield s


@pytest.fixture
async def frozen() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(time_scale=0) as s:
        s.set_default_script(FIVE_SECONDS.model_copy(update={"processing_s": 10}))
        yield s


@pytest.fixture
def client(http: aiohttp.ClientSession, sim: EvolinkSimulator) -> SimClient:
    return SimClient(http, sim)


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as r:
        yield r


# --- create answered by a proxy after the task was made -----------------------------------


@pytest.mark.parametrize(
    ("status", "style", "marker"),
    [
        (502, "nginx", "<center><h1>502 Bad Gateway</h1></center>"),
        (503, "nginx", "503 Service Unavailable"),
        (504, "cloudflare", "Error 504"),
        (524, "cloudflare", "A timeout occurred"),
    ],
)
async def test_proxy_error_page_after_the_task_was_created(
    sim: EvolinkSimulator,
    client: SimClient,
    receiver: CallbackReceiver,
    status: int,
    style: Any,
    marker: str,
) -> None:
    sim.proxy_fail_next_create(status, style=style)
    response = await client.create(callback_url=receiver.url())
    assert response.status == status
    assert response.content_type == "text/html"
    page = await response.text()
    assert marker in page and not page.lstrip().startswith("{")
    # The backend accepted the task: it exists, holds credits, runs, is billed, calls back.
    (task,) = sim.tasks.values()
    assert sim.create_attempts == 1 and task.credits_reserved == 60
    await sim.wait_for_callbacks(task.id, 1, successful=True)
    assert receiver.received[0].body["id"] == task.id
    assert receiver.received[0].body["status"] == "completed"
    assert await client.used_and_remaining() == (60, 100000 - 60)
    assert (await client.create()).status == 200  # one fault per count


async def test_proxy_error_page_before_anything_creates_nothing(
    sim: EvolinkSimulator, client: SimClient, http: aiohttp.ClientSession
) -> None:
    sim.proxy_fail_next_create(502, count=2, created=False)
    assert (await client.create()).status == 502
    # The proxy answers before the API sees the request: even without a key.
    async with http.post(sim.base_url + "/v1/videos/generations", json={}) as response:
        assert response.status == 502 and response.content_type == "text/html"
    assert sim.tasks == {} and sim.create_attempts == 2
    with pytest.raises(ValueError, match="5xx"):
        sim.proxy_fail_next_create(404)


async def test_connection_dropped_after_creating(sim: EvolinkSimulator, client: SimClient) -> None:
    sim.drop_after_create_next()
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.create()
    (task,) = sim.tasks.values()
    await sim.wait_until_settled(task.id)
    assert task.status == "completed" and sim.ledger.used == 60
    assert (await client.create()).status == 200 and len(sim.tasks) == 2


async def test_refused_creates_do_not_use_up_an_after_create_fault(
    sim: EvolinkSimulator, client: SimClient
) -> None:
    sim.proxy_fail_next_create(502)
    sim.credits = 10  # 402: nothing created, so the proxy fault waits for a real create
    assert (await client.create()).status == 402
    sim.credits = 1000
    assert (await client.create()).status == 502 and len(sim.tasks) == 1


async def test_proxy_error_page_on_a_query(sim: EvolinkSimulator, client: SimClient) -> None:
    task_id = await client.create_ok()
    sim.proxy_fail_next_get(503)
    async with client.http.get(f"{sim.base_url}/v1/tasks/{task_id}", headers=AUTH) as r:
        assert r.status == 503 and r.content_type == "text/html"
    assert (await client.query(task_id))[0] == 200


# --- transient 404s on queries ------------------------------------------------------------


async def test_not_found_for_the_next_queries_of_one_task(
    sim: EvolinkSimulator, client: SimClient
) -> None:
    first, second = await client.create_ok(), await client.create_ok()
    sim.not_found_next_get(2, first)
    status, body = await client.query(first)
    assert status == 404
    assert body["error"] == {
        "code": "task_not_found",
        "message": "The requested task could not be found",
        "type": "invalid_request_error",
    }
    assert (await client.query(second))[0] == 200  # another task is not affected
    sim.error_envelope = "legacy"
    status, body = await client.query(first)
    assert status == 404 and body["error"]["code"] == 404
    assert body["error"]["param"] == "task_id"
    assert (await client.query(first))[0] == 200  # then back to normal
    assert sim.request_counts(first)["get"] == 3
    with pytest.raises(KeyError):
        sim.not_found_next_get(1, "task-unified-1-missing0")


async def test_not_found_for_any_task(sim: EvolinkSimulator, client: SimClient) -> None:
    first, second = await client.create_ok(), await client.create_ok()
    sim.not_found_next_get(2)
    assert [(await client.query(t))[0] for t in (first, second, first)] == [404, 404, 200]


async def test_not_found_for_a_span_of_provider_time(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    client = SimClient(http, frozen)
    task_id = await client.create_ok()
    frozen.not_found_next_get(task_id=task_id, for_seconds=600)
    for step in (0, 300, 299):
        frozen.advance(step)
        assert (await client.query(task_id))[0] == 404
    assert frozen.stats()["pending_faults"]["not_found"][task_id]["until"] == 600
    frozen.advance(1)
    status, body = await client.query(task_id)
    assert status == 200 and body["status"] == "completed"  # it ran meanwhile
    assert frozen.stats()["pending_faults"]["not_found"] == {}
    with pytest.raises(ValueError, match="not both"):
        frozen.not_found_next_get(2, for_seconds=5)


# --- completed without results ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["missing", "empty"])
async def test_completed_without_results_is_billed_and_calls_back(
    sim: EvolinkSimulator, client: SimClient, receiver: CallbackReceiver, mode: Any
) -> None:
    sim.script_next_task(FIVE_SECONDS.model_copy(update={"results": mode}))
    task_id = await client.create_ok(callback_url=receiver.url())
    await sim.wait_until_settled(task_id)
    _, body = await client.query(task_id)
    assert (body["status"], body["progress"]) == ("completed", 100)
    assert body.get("results", "absent") == ("absent" if mode == "missing" else [])
    assert receiver.received[0].body == body  # the callback carries the same body
    assert await client.used_and_remaining() == (60, 100000 - 60)
    assert sim.tasks[task_id].result_url is None
    with pytest.raises(ValueError, match="no result link"):
        sim.break_result(task_id)


async def test_complete_now_without_results(sim: EvolinkSimulator, client: SimClient) -> None:
    sim.set_default_script(FIVE_SECONDS.model_copy(update={"processing_s": 1e9}))
    task_id = await client.create_ok()
    sim.complete_now(task_id, results="empty")
    _, body = await client.query(task_id)
    assert body["status"] == "completed" and body["results"] == []
    assert sim.ledger.used == 60


async def test_results_found_later(sim: EvolinkSimulator, client: SimClient) -> None:
    sim.set_default_script(FIVE_SECONDS.model_copy(update={"processing_s": 1e9}))
    task_id = await client.create_ok()
    with pytest.raises(ValueError, match="did not complete without results"):
        sim.find_results(task_id)  # still running
    sim.complete_now(task_id, results="missing")
    sim.find_results(task_id)
    _, body = await client.query(task_id)
    assert body["status"] == "completed" and len(body["results"]) == 1
    assert await download_statuses(body["results"][0], 1) == [200]
    assert sim.ledger.used == 60  # billed once, at completion
    with pytest.raises(ValueError, match="did not complete without results"):
        sim.find_results(task_id)


# --- result link down for a while ---------------------------------------------------------


async def completed(client: SimClient, **script: Any) -> tuple[str, str]:
    client.sim.script_next_task(TaskScript.model_validate({**FIVE_SECONDS.model_dump(), **script}))
    task_id = await client.create_ok()
    await client.sim.wait_until_settled(task_id)
    _, body = await client.query(task_id)
    return task_id, body["results"][0]


async def download_statuses(url: str, n: int) -> list[int]:
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(n):
            async with http.get(url) as response:
                await response.read()
                statuses.append(response.status)
        return statuses


@pytest.mark.parametrize("status", [503, 404])
async def test_result_link_fails_for_some_requests_then_works(
    sim: EvolinkSimulator, client: SimClient, http: aiohttp.ClientSession, status: int
) -> None:
    task_id, url = await completed(client)
    sim.break_result(task_id, status, for_requests=2)
    assert await download_statuses(url, 3) == [status, status, 200]
    async with http.get(url) as response:
        assert response.content_type == "video/mp4"


async def raw_get(url: str) -> bytes:
    """One GET on a raw socket: aiohttp would quietly repeat a GET whose connection died."""
    target = URL(url)
    assert target.host is not None and target.port is not None
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(f"GET {target.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return await reader.read()
    finally:
        writer.close()


async def test_result_link_reset_then_works(sim: EvolinkSimulator, client: SimClient) -> None:
    task_id, url = await completed(client)
    sim.break_result(task_id, "reset", for_requests=1)
    with pytest.raises(ConnectionResetError):
        await raw_get(url)
    assert (await raw_get(url)).startswith(b"HTTP/1.1 200 OK")


async def test_result_outage_for_provider_seconds_then_until_expiry(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim, client = frozen, SimClient(http, frozen)
    task_id = await client.create_ok()  # completes at provider second 10
    # Armed before completion, the outage starts when the link is published.
    sim.break_result(task_id, 503, for_seconds=600)
    await sim.wait_until(lambda: sim.tasks[task_id].inputs_checked)
    sim.advance(10)
    await sim.wait_until_settled(task_id)
    _, body = await client.query(task_id)
    url = body["results"][0]
    sim.advance(599)
    assert await download_statuses(url, 2) == [503, 503]
    assert sim.stats()["pending_faults"]["result_outages"]
    sim.advance(1)
    assert await download_statuses(url, 1) == [200]
    assert sim.stats()["pending_faults"]["result_outages"] == {}
    sim.advance(10 + 86400 - 1 - sim.clock.now())
    assert await download_statuses(url, 1) == [200]
    sim.advance(1)
    assert await download_statuses(url, 1) == [410]  # 24 h after completion


async def test_result_outage_from_the_script(client: SimClient) -> None:
    _, url = await completed(client, result_outage={"status": 502, "requests": 1})
    assert await download_statuses(url, 2) == [502, 200]
    with pytest.raises(ValueError):
        TaskScript(result_outage={"requests": 1, "seconds": 5})
    with pytest.raises(ValueError):
        TaskScript(result_outage={"status": 302})


# --- the same over the control API --------------------------------------------------------


async def test_control_api_injects_the_worst_day(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim, client = frozen, SimClient(http, frozen)
    assert (await client.control("/proxy-fail-next-create", {"status": 504}))[0] == 200
    assert (await client.control("/proxy-fail-next-create", {"created": False}))[0] == 200
    assert (await client.control("/drop-after-create-next", {}))[0] == 200
    assert [f["kind"] for f in sim.stats()["pending_faults"]["create"]] == [
        "proxy",
        "proxy_before",
        "drop_after",
    ]
    assert (await client.create()).status == 504
    assert (await client.create()).status == 502
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.create()
    assert len(sim.tasks) == 2 and sim.create_attempts == 3
    first, second = sim.tasks

    assert (await client.control("/proxy-fail-next-get", {"status": 502}))[0] == 200
    body = {"count": 1, "task_id": first}
    assert (await client.control("/not-found-next-get", body))[0] == 200
    assert (await client.control("/not-found-next-get", {"for_seconds": 5}))[0] == 200
    async with http.get(f"{sim.base_url}/v1/tasks/{first}", headers=AUTH) as response:
        assert response.status == 502 and response.content_type == "text/html"
    assert (await client.query(first))[0] == 404  # its own window
    assert (await client.query(second))[0] == 404  # the any-task window
    sim.advance(5)
    assert (await client.query(first))[0] == 200

    assert (await client.control(f"/break-result/{first}", {"status": "reset"}))[0] == 200
    assert (await client.control(f"/complete/{second}", {"results": "empty"}))[0] == 200
    _, body = await client.query(second)
    assert body["status"] == "completed" and body["results"] == []
    assert (await client.control(f"/break-result/{second}", {}))[0] == 400  # no link
    sim.advance(10)
    await sim.wait_until_settled(first)
    _, body = await client.query(first)
    with pytest.raises(ConnectionResetError):
        await raw_get(body["results"][0])

    for path, payload in [
        ("/proxy-fail-next-create", {"status": 404}),
        ("/proxy-fail-next-get", {"created": False}),
        ("/not-found-next-get", {"count": 2, "for_seconds": 5}),
        (f"/break-result/{first}", {"for_requests": 1, "for_seconds": 5}),
        (f"/break-result/{first}", {"status": 302}),
        (f"/complete/{first}", {"results": "some"}),
    ]:
        assert (await client.control(path, payload))[0] == 400, path
    assert (await client.control("/not-found-next-get", {"task_id": "task-unified-0-x"}))[0] == 404
    assert (await client.control("/break-result/task-unified-0-x", {}))[0] == 404
