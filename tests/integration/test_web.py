from __future__ import annotations

import time

import aiohttp
import pytest
import yarl

from sandbox.evolink_sim import TaskScript
from storage.models import JobState, MediaRole
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines


async def test_rehosted_media_is_served_with_safe_headers_and_ranges(harness: Harness) -> None:
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=100_000, estimated_time=100_000))
    job = await services.engine.submit(harness.request(harness.files.clip()))
    [video] = await services.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    url = (await services.store.public_link(video)).url
    original = (harness.files.root / "clip.mp4").read_bytes()
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp4"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Accept-Ranges"] == "bytes"
            assert int(response.headers["Content-Length"]) == len(original)
            assert await response.read() == original
        async with http.get(url, headers={"Range": "bytes=10-19"}) as response:
            assert response.status == 206
            assert await response.read() == original[10:20]
        base = harness.public_base_url
        for path in (
            f"/m/{video.token}/other-name.mp4",
            f"/m/{'A' * 32}/input.mp4",
            "/m/../../etc/passwd",
            f"/m/{video.token[:-1]}%2F/input.mp4",
            "/m/",
        ):
            async with http.get(base + path) as response:
                assert response.status == 404, path


async def test_inputs_stop_being_served_after_the_grace_period_and_are_kept_for_rerun(
    harness: Harness,
) -> None:
    services = await harness.start(INPUT_GRACE_SECONDS="0", RESULT_RETENTION_SECONDS="3600")
    job = await services.engine.submit(harness.request(harness.files.clip()))
    [video] = await services.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    await harness.notifier.wait_for_delivery(job.id)
    async with aiohttp.ClientSession() as http:
        async with http.get((await services.store.public_link(video)).url) as response:
            assert response.status == 404
    # No longer public, but kept as long as results, for "Re-run".
    assert await services.store.remove_expired() == 0
    assert services.store.path_of(video).exists()

    later = time.time() + 3601
    harness.clock = lambda: later
    await harness.stop()
    services = await harness.start(INPUT_GRACE_SECONDS="0", RESULT_RETENTION_SECONDS="3600")
    await services.store.remove_expired()
    assert not services.store.path_of(video).exists()


async def test_spoofed_callbacks_change_nothing(harness: Harness) -> None:
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=100_000, estimated_time=100_000))
    job = await services.engine.submit(harness.request(harness.files.clip()))
    before = await harness.job(job.id)
    base = f"{harness.public_base_url}/callbacks/evolink"
    async with aiohttp.ClientSession() as http:
        attempts = [
            (f"{base}/{job.id}/{'x' * 32}", b"{}", 404),  # wrong secret
            (f"{base}/99999/{job.callback_secret}", b"{}", 404),  # unknown job
            (f"{base}/{job.id}/{job.callback_secret}", b"x" * 70_000, 413),  # oversized
            (f"{base}/{job.id}/short", b"{}", 404),
        ]
        for url, body, status in attempts:
            async with http.post(url, data=body) as response:
                assert response.status == status
        # Garbage with the right secret is only a hint: the provider still says "processing".
        async with http.post(f"{base}/{job.id}/{job.callback_secret}", data=b"{garbage") as r:
            assert r.status == 204
    await services.tracker.idle()
    after = await harness.job(job.id)
    assert after.state is JobState.SUBMITTED and after.provider_task_id == before.provider_task_id


async def test_duplicate_callbacks_deliver_exactly_once(harness: Harness) -> None:
    harness.callbacks = True
    services = await harness.start()
    harness.sim.script_next_task(TaskScript(processing_s=10, callback="duplicate"))
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert harness.sim.tasks[job.provider_task_id or ""].request.callback_url is not None
    await harness.notifier.wait_for_delivery(job.id)
    await harness.sim.wait_for_callbacks(job.provider_task_id or "", 2, 10)
    await services.tracker.idle()
    assert harness.notifier.kinds(job.id).count("delivered") == 1
    counts = harness.sim.request_counts(job.provider_task_id or "")
    assert counts["create"] == 1 and counts["get"] <= 3


async def test_health_reports_database_and_loop(harness: Harness) -> None:
    await harness.start()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{harness.public_base_url}/healthz") as response:
            body = await response.json()
    assert response.status == 200 and body["database"] == "ok" and body["status"] == "ok"


async def test_liveness_is_answered_with_the_loops_own_lag(harness: Harness) -> None:
    services = await harness.start()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{services.metrics_web.port}/livez") as response:
            live = await response.json()
    assert response.status == 200 and live["status"] == "ok"
    assert live["event_loop_lag_ms"] >= 0


async def test_metrics_count_jobs_provider_calls_and_billing(harness: Harness) -> None:
    services = await harness.start()
    job = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    await harness.notifier.wait_for_delivery(job.id)
    metrics_url = f"http://127.0.0.1:{services.metrics_web.port}/metrics"
    async with aiohttp.ClientSession() as http:
        async with http.get(metrics_url) as response:
            text = await response.text()
    assert 'kling_jobs{state="delivered"} 1.0' in text
    assert (
        'kling_provider_calls_total{endpoint="POST /v1/videos/generations",status="200"} 1.0'
        in text
    )
    assert "kling_billed_seconds_total 4.0" in text
    assert "kling_delivery_delay_seconds_count 1.0" in text


async def test_metrics_and_liveness_are_served_on_their_own_listener_never_the_public_one(
    harness: Harness,
) -> None:
    services = await harness.start()
    assert services.metrics_web.port not in (None, harness.port)
    metrics_base = f"http://127.0.0.1:{services.metrics_web.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{metrics_base}/metrics") as response:
            assert response.status == 200
            assert "kling_jobs" in await response.text()
        # It serves nothing else for operators but liveness: no media, callbacks, readiness.
        async with http.get(f"{metrics_base}/healthz") as response:
            assert response.status == 404
        # However the path is spelt, the public listener knows no /metrics, and serves only
        # media, callbacks and /healthz (issue 12): no /livez either.
        for path in ("/metrics", "/./metrics", "/%6detrics", "/metrics/", "/METRICS",
                     "/healthz/../metrics", "/livez", "/./livez"):
            async with http.get(
                yarl.URL(harness.public_base_url + path, encoded=True)
            ) as response:
                assert response.status == 404, path
                assert "kling_" not in await response.text(), path
        async with http.get(f"{harness.public_base_url}/healthz") as response:
            assert response.status == 200
