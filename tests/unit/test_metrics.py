from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import prometheus_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import bot.metrics
from bot.metrics import (
    JobCountsSnapshot,
    Metrics,
    count_media_bytes,
    make_metrics_handler,
)
from storage.models import JobState

Client = TestClient[web.Request, web.Application]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> tuple[dict[str, str], Samples]:
    """Family types by name, and every sample keyed by (name, sorted labels)."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        sample: Sample
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def render(metrics: Metrics) -> tuple[dict[str, str], Samples]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return scrape(body.decode())


def test_every_metric_is_exported_with_its_type() -> None:
    types, _ = render(Metrics())
    assert types["kling_jobs"] == "gauge"
    assert types["kling_provider_calls"] == "counter"
    assert types["kling_delivery_delay_seconds"] == "histogram"
    assert types["kling_billed_seconds"] == "counter"
    assert types["kling_event_loop_lag_seconds"] == "gauge"
    assert types["kling_media_served_bytes"] == "counter"


def test_jobs_by_state_are_read_at_scrape_time_and_known_states_report_zero() -> None:
    counts = {"submitted": 2}
    metrics = Metrics(job_counts=lambda: counts, job_states=[s.value for s in JobState])
    _, samples = render(metrics)
    assert samples[("kling_jobs", (("state", "submitted"),))] == 2
    assert samples[("kling_jobs", (("state", "delivered"),))] == 0
    assert len([key for key in samples if key[0] == "kling_jobs"]) == len(JobState)
    counts["submitted"] = 5
    _, samples = render(metrics)
    assert samples[("kling_jobs", (("state", "submitted"),))] == 5


def test_a_failing_job_source_does_not_fail_the_scrape() -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("database is locked")

    metrics = Metrics(job_counts=broken, job_states=["submitted"])
    metrics.record_billed_seconds(3)
    _, samples = render(metrics)
    assert not [key for key in samples if key[0] == "kling_jobs"]
    assert samples[("kling_billed_seconds_total", ())] == 3


def test_counters_and_histogram_accumulate() -> None:
    metrics = Metrics()
    metrics.record_provider_call("POST /v1/videos/generations", 200)
    metrics.record_provider_call("GET /v1/tasks/{id}", 200)
    metrics.record_provider_call("GET /v1/tasks/{id}", 200)
    metrics.record_provider_call("GET /v1/tasks/{id}", "timeout")
    metrics.observe_delivery_delay(4.0)
    metrics.observe_delivery_delay(90.0)
    metrics.observe_delivery_delay(-1.0)  # a clock step backwards counts as zero
    metrics.record_billed_seconds(5)
    metrics.record_billed_seconds(10)
    metrics.record_media_served(1000)
    metrics.record_media_served(24)
    _, samples = render(metrics)

    def calls(endpoint: str, status: str) -> float:
        labels = (("endpoint", endpoint), ("status", status))
        return samples[("kling_provider_calls_total", labels)]

    assert calls("POST /v1/videos/generations", "200") == 1
    assert calls("GET /v1/tasks/{id}", "200") == 2
    assert calls("GET /v1/tasks/{id}", "timeout") == 1
    assert samples[("kling_delivery_delay_seconds_count", ())] == 3
    assert samples[("kling_delivery_delay_seconds_sum", ())] == 94.0
    assert samples[("kling_delivery_delay_seconds_bucket", (("le", "5.0"),))] == 2
    assert samples[("kling_delivery_delay_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("kling_billed_seconds_total", ())] == 15
    assert samples[("kling_media_served_bytes_total", ())] == 1024


def test_loop_lag_is_read_from_the_callable() -> None:
    lag = [0.25]
    metrics = Metrics(loop_lag=lambda: lag[0])
    assert render(metrics)[1][("kling_event_loop_lag_seconds", ())] == 0.25
    lag[0] = 1.5
    assert render(metrics)[1][("kling_event_loop_lag_seconds", ())] == 1.5


def test_instances_are_independent_of_each_other_and_of_the_global_registry() -> None:
    first, second = Metrics(), Metrics()
    first.record_billed_seconds(7)
    assert render(second)[1][("kling_billed_seconds_total", ())] == 0
    global_text = prometheus_client.generate_latest().decode()
    assert "kling_" not in global_text


async def test_job_counts_snapshot_turns_enum_keys_into_label_values() -> None:
    async def fetch() -> dict[JobState, int]:
        return {JobState.SUBMITTED: 3, JobState.FAILED: 1}

    snapshot = JobCountsSnapshot(fetch)
    assert snapshot() == {}
    await snapshot.refresh()
    assert snapshot() == {"submitted": 3, "failed": 1}


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[Client]]]:
    clients: list[Client] = []

    async def start(app: web.Application) -> Client:
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_metrics_handler_refreshes_then_serves_the_exposition(
    serve: Callable[[web.Application], Awaitable[Client]],
) -> None:
    database = {JobState.SUBMITTED: 4}

    async def count_by_state() -> dict[JobState, int]:
        return dict(database)

    snapshot = JobCountsSnapshot(count_by_state)
    metrics = Metrics(job_counts=snapshot, job_states=[s.value for s in JobState])
    app = web.Application()
    app.router.add_get("/metrics", make_metrics_handler(metrics, before_render=snapshot.refresh))
    client = await serve(app)

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == metrics.render()[1]
    assert response.headers["Cache-Control"] == "no-store"
    _, samples = scrape(await response.text())
    assert samples[("kling_jobs", (("state", "submitted"),))] == 4

    database[JobState.SUBMITTED] = 6
    _, samples = scrape(await (await client.get("/metrics")).text())
    assert samples[("kling_jobs", (("state", "submitted"),))] == 6


async def test_a_slow_or_failing_refresh_serves_the_previous_values(
    serve: Callable[[web.Application], Awaitable[Client]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bot.metrics, "SCRAPE_REFRESH_TIMEOUT_S", 0.05)
    behaviour = ["ok"]

    async def count_by_state() -> dict[str, int]:
        if behaviour[0] == "slow":
            await asyncio.Event().wait()  # a database that never answers
        if behaviour[0] == "fail":
            raise RuntimeError("database is locked")
        return {"submitted": 1}

    snapshot = JobCountsSnapshot(count_by_state)
    metrics = Metrics(job_counts=snapshot)
    app = web.Application()
    app.router.add_get("/metrics", make_metrics_handler(metrics, before_render=snapshot.refresh))
    client = await serve(app)
    for mode in ("ok", "slow", "fail"):
        behaviour[0] = mode
        response = await client.get("/metrics")
        assert response.status == 200, mode
        _, samples = scrape(await response.text())
        assert samples[("kling_jobs", (("state", "submitted"),))] == 1, mode


async def test_media_bytes_are_counted_for_whole_files_and_ranges_only(
    serve: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    media = tmp_path / "clip.mp4"
    media.write_bytes(bytes(range(256)) * 40)  # 10240 bytes

    async def serve_file(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(media)

    async def not_found(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound()

    metrics = Metrics()
    app = web.Application()
    app.on_response_prepare.append(count_media_bytes(metrics))
    app.router.add_get("/m/{token}/{name}", serve_file, allow_head=True)
    app.router.add_get("/m/missing", not_found)
    app.router.add_get("/elsewhere", serve_file)
    client = await serve(app)

    assert len(await (await client.get("/m/tok/clip.mp4")).read()) == 10240
    ranged = await client.get("/m/tok/clip.mp4", headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and len(await ranged.read()) == 100
    assert (await client.head("/m/tok/clip.mp4")).status == 200
    assert (await client.get("/m/missing")).status == 404
    assert (await client.get("/elsewhere")).status == 200
    assert render(metrics)[1][("kling_media_served_bytes_total", ())] == 10240 + 100
