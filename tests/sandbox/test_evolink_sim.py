"""The EvoLink simulator's public API over real loopback HTTP, driven by a plain client.

Covers auth, every 400 rule, both error envelopes, injected failures, the task lifecycle on
the provider clock, result files and their expiry, credits, request counting, the `/_sim/`
control API and the command line. Input checks and callbacks have their own files.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from sandbox.evolink_sim.testing import MediaServer
from sandbox.media_samples import make_mp4, probe_video

API_KEY = "sk-evo-test"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CREATE = "/v1/videos/generations"
MODEL = "kling-o1-video-edit"
FAST = "kling-o1-video-edit-fast"
UNUSED_URL = "https://cdn.example.com/clip.mp4"  # never fetched: these requests are refused
TASK_ID = re.compile(r"^task-unified-(\d{10})-[a-z0-9]{8}$")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evolink-sim-media")
    make_mp4(root / "clip4.mp4", 4)
    make_mp4(root / "clip7.mp4", 7)
    make_mp4(root / "result.mp4", 5, color=(10, 200, 90))
    return root


@pytest.fixture
async def sim() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(api_key=API_KEY, time_scale=1000, allow_private_urls=True) as s:
        yield s


@pytest.fixture
async def frozen() -> AsyncIterator[EvolinkSimulator]:
    """A simulator whose clock only moves with advance()."""
    async with EvolinkSimulator(api_key=API_KEY, time_scale=0, allow_private_urls=True) as s:
        yield s


def make_body(video_url: str = UNUSED_URL, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "prompt": "make the sky purple"}
    body["video_urls"] = [video_url]
    body.update(fields)
    return body


async def post(
    http: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": AUTH if headers is None else headers}
    if isinstance(payload, bytes | str):
        kwargs["data"] = payload
    else:
        kwargs["json"] = payload
    async with http.post(sim.base_url + CREATE, **kwargs) as response:
        return response.status, await response.json()


async def get(
    http: aiohttp.ClientSession, sim: EvolinkSimulator, path: str, headers: Any = None
) -> tuple[int, Any]:
    async with http.get(sim.base_url + path, headers=AUTH if headers is None else headers) as r:
        return r.status, await r.json()


async def create_task(
    http: aiohttp.ClientSession, sim: EvolinkSimulator, media: MediaServer, **fields: Any
) -> dict[str, Any]:
    status, task = await post(http, sim, make_body(media.url("clip4.mp4"), **fields))
    assert status == 200 and isinstance(task, dict), task
    return task


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": API_KEY},
        {"Authorization": "Basic x"},
    ],
    ids=["missing", "wrong-key", "no-scheme", "basic"],
)
async def test_create_without_valid_bearer_is_401(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    status, body = await post(http, sim, make_body(), headers=headers)
    assert status == 401
    assert body == {
        "error": {
            "code": "unauthorized",
            "message": "Invalid or expired token",
            "type": "authentication_error",
        }
    }
    assert sim.tasks == {} and sim.create_attempts == 1


async def test_query_and_credits_need_auth(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    status, body = await get(http, sim, "/v1/tasks/task-unified-1-abcdefgh", headers={})
    assert status == 401
    assert body["error"] == {
        "code": "unauthorized",
        "message": "Authentication required",
        "type": "authentication_error",
    }
    status, body = await get(http, sim, "/v1/credits", headers={"Authorization": "Bearer no"})
    # The credits page documents legacy-style errors (integer code).
    assert (status, body["error"]["code"], body["error"]["type"]) == (
        401,
        401,
        "authentication_error",
    )


# --- 400 rules ----------------------------------------------------------------------------

LONG_CALLBACK = "https://hooks.example.com/" + "a" * 2048

INVALID_BODIES: dict[str, tuple[Any, str]] = {
    "not-json": (b"{not json", "not valid JSON"),
    "json-array": ([1, 2], "JSON object"),
    "unknown-model": (make_body(model="kling-v2"), "model"),
    "model-not-string": (make_body(model=5), "model"),
    "missing-model": ({"prompt": "x", "video_urls": [UNUSED_URL]}, "model: Field required"),
    "missing-prompt": ({"model": MODEL, "video_urls": [UNUSED_URL]}, "prompt: Field required"),
    "empty-prompt": (make_body(prompt=""), "prompt"),
    "blank-prompt": (make_body(prompt="   "), "prompt: must not be empty"),
    "prompt-not-string": (make_body(prompt=["edit"]), "prompt"),
    "prompt-too-long": (make_body(prompt="x" * 5001), "5000"),
    "missing-video": ({"model": MODEL, "prompt": "x"}, "video_urls: Field required"),
    "video-not-list": (make_body() | {"video_urls": UNUSED_URL}, "video_urls"),
    "no-video": (make_body() | {"video_urls": []}, "video_urls"),
    "two-videos": (make_body() | {"video_urls": [UNUSED_URL, UNUSED_URL]}, "video_urls"),
    "video-not-string": (make_body() | {"video_urls": [7]}, "video_urls[0]"),
    "video-not-uri": (make_body("clip.mp4"), "http(s) URL"),
    "video-ftp": (make_body("ftp://example.com/clip.mp4"), "http(s) URL"),
    "no-images": (make_body(image_urls=[]), "image_urls"),
    "five-images": (make_body(image_urls=[UNUSED_URL] * 5), "image_urls"),
    "image-not-string": (make_body(image_urls=[{"url": UNUSED_URL}]), "image_urls[0]"),
    "images-null": (make_body(image_urls=None), "image_urls: must not be null"),
    "sound-string": (make_body(keep_original_sound="true"), "keep_original_sound"),
    "sound-int": (make_body(keep_original_sound=1), "keep_original_sound"),
    "aspect-ratio": (make_body(aspect_ratio="16:9"), "aspect_ratio is not supported"),
    "unknown-field": (make_body(duration=5), "unknown field 'duration'"),
    "callback-http": (make_body(callback_url="http://hooks.example.com/x"), "https"),
    "callback-too-long": (make_body(callback_url=LONG_CALLBACK), "2048"),
    "callback-not-string": (make_body(callback_url=5), "callback_url"),
    "callback-localhost": (make_body(callback_url="https://localhost/x"), "private"),
    "callback-loopback": (make_body(callback_url="https://127.0.0.1:8443/x"), "private"),
    "callback-ten": (make_body(callback_url="https://10.1.2.3/x"), "private"),
    "callback-192": (make_body(callback_url="https://192.168.1.10/x"), "private"),
    "callback-172": (make_body(callback_url="https://172.20.0.1/x"), "private"),
    "callback-link-local": (make_body(callback_url="https://169.254.169.254/x"), "private"),
    "callback-ipv6-loopback": (make_body(callback_url="https://[::1]/x"), "private"),
    "callback-ula": (make_body(callback_url="https://[fd12::1]/x"), "private"),
    "callback-unspecified": (make_body(callback_url="https://0.0.0.0/x"), "private"),
    "callback-decimal-ip": (make_body(callback_url="https://2130706433/x"), "private"),
    "callback-mapped-ipv6": (make_body(callback_url="https://[::ffff:10.0.0.1]/x"), "private"),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES))
async def test_invalid_create_is_400_and_creates_nothing(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, case: str
) -> None:
    payload, needle = INVALID_BODIES[case]
    status, body = await post(http, sim, payload)
    assert status == 400
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "type"}
    assert error["code"] == "invalid_request" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Invalid request parameters: ")
    assert needle in error["message"]
    assert sim.tasks == {} and sim.create_attempts == 1


async def test_boundary_values_are_accepted(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    images = [media.url("clip4.mp4")] * 4  # only the count matters for the 400 rules
    sim.set_default_script(TaskScript(check_inputs=False))
    for fields in (
        {"prompt": "é" * 5000},
        {"image_urls": images, "keep_original_sound": False},
        {"model": FAST, "keep_original_sound": True},
        {"callback_url": "https://hooks.example.com/evolink/" + "b" * 1990},
    ):
        await create_task(http, sim, media, **fields)
    assert len(sim.tasks) == 4


async def test_unknown_fields_can_be_tolerated(http: aiohttp.ClientSession) -> None:
    async with EvolinkSimulator(allow_unknown_fields=True) as sim:
        sim.set_default_script(TaskScript(check_inputs=False))
        status, _ = await post(http, sim, make_body(quality="high"))
        assert status == 200
        status, body = await post(http, sim, make_body(aspect_ratio="1:1"))
        assert status == 400 and "aspect_ratio" in body["error"]["message"]


async def test_oversized_body_is_413(sim: EvolinkSimulator, http: aiohttp.ClientSession) -> None:
    status, body = await post(http, sim, make_body(prompt="x" * (2 * 1024 * 1024)))
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert sim.tasks == {}


async def test_denied_model_is_403(sim: EvolinkSimulator, http: aiohttp.ClientSession) -> None:
    sim.denied_models.add(FAST)
    status, body = await post(http, sim, make_body(model=FAST))
    assert status == 403
    assert body["error"] == {
        "code": "model_access_denied",
        "message": f"Token does not have access to model: {FAST}",
        "type": "invalid_request_error",
    }


# --- envelopes ----------------------------------------------------------------------------


async def test_legacy_envelope_uses_integer_codes_and_hints(http: aiohttp.ClientSession) -> None:
    async with EvolinkSimulator(api_key=API_KEY, error_envelope="legacy") as sim:
        status, body = await post(http, sim, make_body(prompt=""))
        assert status == 400
        assert body["error"]["code"] == 400 and body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("Invalid request parameter: ")
        assert set(body["error"]) == {"code", "message", "type"}

        _, body = await post(http, sim, make_body(), headers={})
        assert body["error"] == {
            "code": 401,
            "message": "Invalid or expired token",
            "type": "authentication_error",
        }
        sim.fail_next_create(429)
        _, body = await post(http, sim, make_body())
        assert body["error"] == {
            "code": 429,
            "message": "Rate limit exceeded",
            "type": "rate_limit_error",
            "fallback_suggestion": "retry after 60 seconds",
        }
        sim.fail_next_create(402)
        _, body = await post(http, sim, make_body())
        assert body["error"]["fallback_suggestion"] == "https://evolink.ai/dashboard/billing"
        sim.fail_next_create(403)
        _, body = await post(http, sim, make_body())
        assert body["error"]["param"] == "model" and body["error"]["type"] == "permission_error"

        status, body = await get(http, sim, "/v1/tasks/task-unified-1-abcdefgh")
        assert status == 404
        assert body["error"] == {
            "code": 404,
            "message": "Task not found or expired",
            "type": "not_found_error",
            "param": "task_id",
        }
        status, body = await get(http, sim, "/v1/tasks/nope")
        assert status == 400 and body["error"]["code"] == 400
        assert body["error"]["param"] == "task_id"

        sim.error_envelope = "current"  # switchable at runtime
        _, body = await post(http, sim, make_body(), headers={})
        assert body["error"]["code"] == "unauthorized"


# --- injected create failures -------------------------------------------------------------


async def test_injected_429_carries_retry_after_and_creates_nothing(
    sim: EvolinkSimulator, http: aiohttp.ClientSession
) -> None:
    sim.fail_next_create(429, retry_after=2.5)
    sim.fail_next_create(429)
    async with http.post(sim.base_url + CREATE, json=make_body(), headers=AUTH) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"  # whole seconds, rounded up
        assert (await response.json())["error"] == {
            "code": "rate_limit_exceeded",
            "message": "Too many requests, please try again later",
            "type": "rate_limit_error",
        }
    async with http.post(sim.base_url + CREATE, json=make_body(), headers=AUTH) as response:
        assert response.status == 429 and "Retry-After" not in response.headers
    assert sim.tasks == {} and sim.create_attempts == 2


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (500, "internal_error", "api_error"),
        (502, "upstream_error", "api_error"),
        (503, "service_unavailable", "api_error"),
        (402, "insufficient_quota", "insufficient_quota"),
    ],
)
async def test_injected_failures_use_the_documented_bodies(
    sim: EvolinkSimulator,
    http: aiohttp.ClientSession,
    media: MediaServer,
    status: int,
    code: str,
    kind: str,
) -> None:
    sim.fail_next_create(status, count=2)
    for _ in range(2):
        got, body = await post(http, sim, make_body(media.url("clip4.mp4")))
        assert (got, body["error"]["code"], body["error"]["type"]) == (status, code, kind)
    assert sim.tasks == {}
    await create_task(http, sim, media)  # the queue is used up: back to normal
    assert sim.create_attempts == 3 and len(sim.tasks) == 1


async def test_faults_are_consumed_in_order(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.fail_next_create(503)
    sim.hang_next_create()
    status, _ = await post(http, sim, make_body(media.url("clip4.mp4")))
    assert status == 503
    # A hang waits for a request that creates a task: refusals do not use it up.
    assert (await post(http, sim, make_body(prompt="")))[0] == 400
    assert (await post(http, sim, make_body(), headers={}))[0] == 401
    with pytest.raises(asyncio.TimeoutError):
        await post_with_timeout(http, sim, make_body(media.url("clip4.mp4")), 0.3)
    assert len(sim.tasks) == 1


async def post_with_timeout(
    http: aiohttp.ClientSession, sim: EvolinkSimulator, payload: Any, seconds: float
) -> int:
    timeout = aiohttp.ClientTimeout(total=seconds)
    async with http.post(sim.base_url + CREATE, json=payload, headers=AUTH, timeout=timeout) as r:
        return r.status


async def test_hang_creates_the_task_but_never_answers(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.hang_next_create()
    payload = make_body(media.url("clip4.mp4"), prompt="hung")
    with pytest.raises(asyncio.TimeoutError):
        await post_with_timeout(http, sim, payload, 0.3)
    (task,) = sim.tasks.values()
    assert task.body == payload and task.request.prompt == "hung"
    await sim.wait_until_settled(task.id)  # the task still runs to completion
    assert task.status == "completed" and sim.create_attempts == 1


async def test_hung_create_is_released_when_the_simulator_stops(
    http: aiohttp.ClientSession,
) -> None:
    sim = EvolinkSimulator(api_key=API_KEY)
    await sim.start()
    sim.set_default_script(TaskScript(check_inputs=False))
    sim.hang_next_create()
    pending = asyncio.create_task(post(http, sim, make_body()))
    await sim.wait_until(lambda: len(sim.tasks) == 1)
    await sim.stop()
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(pending, 5)


async def test_dropped_connection_creates_nothing(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.drop_next_create_connection()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, sim, make_body(media.url("clip4.mp4")))
    assert sim.tasks == {} and sim.create_attempts == 1
    await create_task(http, sim, media)
    assert sim.create_attempts == 2


async def test_delayed_create_answers_late(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.delay_next_create(0.2)
    started = time.monotonic()
    task = await create_task(http, sim, media)
    assert time.monotonic() - started >= 0.2 and task["id"] in sim.tasks


async def test_low_balance_is_402(http: aiohttp.ClientSession) -> None:
    async with EvolinkSimulator(api_key=API_KEY, credits=100) as sim:
        sim.script_next_task(TaskScript(check_inputs=False, outcome="failed"))
        status, body = await post(http, sim, make_body())  # holds 10 s × 12 = 120 credits
        assert status == 402
        assert body["error"] == {
            "code": "insufficient_quota",
            "message": "Insufficient quota. Please top up your account.",
            "type": "insufficient_quota",
        }
        assert sim.tasks == {}
        sim.credits = 130  # top up: the queued script goes to the next accepted task
        status, body = await post(http, sim, make_body())
        assert status == 200 and sim.tasks[body["id"]].script.outcome == "failed"
        # 10 credits left: a known 4 s clip (48 credits) is still too much
        sim.script_next_task(TaskScript(check_inputs=False, video_duration=4))
        status, _ = await post(http, sim, make_body())
        assert status == 402
        sim.credits = 200
        status, body = await post(http, sim, make_body())
        assert status == 200 and body["usage"]["credits_reserved"] == 48
        assert sim.create_attempts == 4


# --- query --------------------------------------------------------------------------------


async def test_task_id_format_and_create_body(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    before = int(time.time())
    task = await create_task(http, sim, media, model=FAST)
    match = TASK_ID.match(task["id"])
    assert match and before <= int(match.group(1)) <= int(time.time())
    assert task == {
        "created": int(match.group(1)),
        "id": task["id"],
        "model": FAST,
        "object": "video.generation.task",
        "progress": 0,
        "status": "pending",
        "task_info": {"can_cancel": True, "estimated_time": 30, "video_duration": 20},
        "type": "video",
        # Before the video is probed the longest billable length is held: 20 s × 6.8.
        "usage": {"billing_rule": "per_second", "credits_reserved": 136, "user_group": "default"},
    }


async def test_bad_and_unknown_task_ids(sim: EvolinkSimulator, http: aiohttp.ClientSession) -> None:
    status, body = await get(http, sim, "/v1/tasks/abc-123")
    assert status == 400
    assert body == {
        "error": {
            "code": "invalid_task_id",
            "message": "Invalid task ID format, must start with 'task-unified-'",
            "type": "invalid_request_error",
            "param": "task_id",
        }
    }
    status, body = await get(http, sim, "/v1/tasks/task-unified-1700000000-abcdefgh")
    assert status == 404
    assert body["error"] == {
        "code": "task_not_found",
        "message": "The requested task could not be found",
        "type": "invalid_request_error",
    }


async def test_injected_get_failures(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await create_task(http, sim, media)
    sim.fail_next_get(500)
    sim.fail_next_get(429, retry_after=1)
    status, body = await get(http, sim, f"/v1/tasks/{task['id']}")
    assert (status, body["error"]["code"], body["error"]["message"]) == (
        500,
        "internal_error",
        "Failed to retrieve task status",
    )
    async with http.get(f"{sim.base_url}/v1/tasks/{task['id']}", headers=AUTH) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "1"
        assert (await response.json())["error"]["type"] == "evo_api_error"
    status, _ = await get(http, sim, f"/v1/tasks/{task['id']}")
    assert status == 200
    assert sim.request_counts(task["id"]) == {"create": 1, "get": 3, "callback": 0}


async def test_lifecycle_on_a_frozen_clock(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim = frozen
    sim.script_next_task(TaskScript(processing_s=100, estimated_time=120))
    created = await create_task(http, sim, media)
    task_id = created["id"]
    path = f"/v1/tasks/{task_id}"
    await sim.wait_until(lambda: sim.tasks[task_id].inputs_checked)

    _, body = await get(http, sim, path)
    assert (body["status"], body["progress"]) == ("pending", 0)
    assert body["task_info"] == {"can_cancel": True, "estimated_time": 120, "video_duration": 4}
    assert body["usage"]["credits_reserved"] == 48  # probed: 4 s × 12
    assert "results" not in body and "error" not in body

    seen: list[int] = []
    for step in (6, 50, 40):
        sim.advance(step)
        _, body = await get(http, sim, path)
        assert body["status"] == "processing"
        seen.append(body["progress"])
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1] < 100
    assert body["task_info"]["estimated_time"] == 120 - 96

    sim.advance(5)
    _, body = await get(http, sim, path)
    assert body["status"] == "completed" and body["progress"] == 100
    assert body["task_info"] == {"can_cancel": False, "video_duration": 4}
    (url,) = body["results"]
    async with http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "video/mp4"
        data = await response.read()
        assert int(response.headers["Content-Length"]) == len(data)
    assert data == sim.results.default_path.read_bytes()
    assert probe_video(data).duration_s > 0
    await sim.wait_until_settled(task_id)


async def test_scripted_result_file_is_served_byte_for_byte(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer, media_dir: Path
) -> None:
    sim.script_next_task(TaskScript(result_path=media_dir / "result.mp4", processing_s=5))
    task = await create_task(http, sim, media)
    await sim.wait_until_settled(task["id"])
    _, body = await get(http, sim, f"/v1/tasks/{task['id']}")
    async with http.get(body["results"][0]) as response:
        assert await response.read() == (media_dir / "result.mp4").read_bytes()
    assert re.search(r"/files/[A-Za-z0-9_-]{32}\.mp4$", body["results"][0])


async def test_missing_result_path_is_refused_at_script_time(sim: EvolinkSimulator) -> None:
    with pytest.raises(FileNotFoundError):
        sim.script_next_task(TaskScript(result_path=Path("/nonexistent/result.mp4")))


async def test_failed_task_reports_the_scripted_code(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.script_next_task(TaskScript(outcome="failed", error_code="content_policy_violation"))
    sim.script_next_task(
        TaskScript(outcome="failed", error_code="service_error", error_message="upstream hiccup")
    )
    first = await create_task(http, sim, media)
    second = await create_task(http, sim, media)
    for task_id in (first["id"], second["id"]):
        await sim.wait_until_settled(task_id)
    _, body = await get(http, sim, f"/v1/tasks/{first['id']}")
    assert body["status"] == "failed" and body["progress"] == 0 and "results" not in body
    assert body["error"]["code"] == "content_policy_violation"
    assert body["error"]["type"] == "task_error" and body["error"]["message"]
    _, body = await get(http, sim, f"/v1/tasks/{second['id']}")
    assert body["error"] == {
        "code": "service_error",
        "message": "upstream hiccup",
        "type": "task_error",
    }
    _, credits = await get(http, sim, "/v1/credits")
    assert credits["data"]["user"]["used_credits"] == 0  # failed tasks are not billed


def test_task_script_rejects_codes_evolink_never_sends() -> None:
    with pytest.raises(ValidationError):
        TaskScript(outcome="failed", error_code="servce_error")


async def test_complete_now_and_fail_now(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.set_default_script(TaskScript(processing_s=1e9))
    done = await create_task(http, sim, media)
    failed = await create_task(http, sim, media)
    sim.complete_now(done["id"])  # once its clip is measured: billed at the measured price
    sim.fail_now(failed["id"], "generation_timeout")
    await sim.wait_until_settled(done["id"])
    _, body = await get(http, sim, f"/v1/tasks/{done['id']}")
    assert body["status"] == "completed" and body["results"]
    _, body = await get(http, sim, f"/v1/tasks/{failed['id']}")
    assert body["status"] == "failed" and body["error"]["code"] == "generation_timeout"
    with pytest.raises(ValueError, match="already"):
        sim.complete_now(done["id"])
    with pytest.raises(ValueError, match="unknown"):
        sim.fail_now(done["id"], "nope")
    with pytest.raises(KeyError):
        sim.complete_now("task-unified-0-missing0")


async def test_time_scale_can_change_while_running(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await create_task(http, frozen, media)
    await frozen.wait_until(lambda: frozen.tasks[task["id"]].inputs_checked)
    assert frozen.tasks[task["id"]].status == "pending"
    frozen.time_scale = 10_000  # 20 provider seconds now take 2 ms
    await frozen.wait_until_settled(task["id"])
    assert frozen.tasks[task["id"]].status == "completed"


# --- result links and task records --------------------------------------------------------


async def test_result_link_dies_after_its_ttl(
    http: aiohttp.ClientSession, media: MediaServer
) -> None:
    async with EvolinkSimulator(
        api_key=API_KEY, time_scale=0, result_ttl_s=50, allow_private_urls=True
    ) as sim:
        sim.script_next_task(TaskScript(processing_s=10))
        task = await create_task(http, sim, media)
        await sim.wait_until(lambda: sim.tasks[task["id"]].inputs_checked)
        sim.advance(10)
        await sim.wait_until_settled(task["id"])
        url = sim.tasks[task["id"]].result_url
        assert url is not None
        sim.advance(49)
        async with http.get(url) as response:
            assert response.status == 200
        sim.advance(2)
        async with http.get(url) as response:
            assert response.status == 410
        async with http.get(url.replace(".mp4", "x.mp4")) as response:
            assert response.status == 404


async def test_expire_result_kills_the_link_now(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await create_task(http, sim, media)
    with pytest.raises(ValueError):
        sim.expire_result(task["id"])  # nothing to expire yet
    await sim.wait_until_settled(task["id"])
    url = sim.tasks[task["id"]].result_url
    assert url is not None
    sim.expire_result(task["id"])
    async with http.get(url) as response:
        assert response.status == 410
    _, body = await get(http, sim, f"/v1/tasks/{task['id']}")
    assert body["status"] == "completed"  # the record outlives its link


async def test_task_records_expire_after_retention(
    http: aiohttp.ClientSession, media: MediaServer
) -> None:
    async with EvolinkSimulator(
        api_key=API_KEY, time_scale=0, task_retention_s=100, allow_private_urls=True
    ) as sim:
        first = await create_task(http, sim, media)
        second = await create_task(http, sim, media)
        status, _ = await get(http, sim, f"/v1/tasks/{first['id']}")
        assert status == 200
        sim.expire_task(second["id"])
        status, body = await get(http, sim, f"/v1/tasks/{second['id']}")
        assert status == 404 and body["error"]["code"] == "task_not_found"
        sim.advance(101)
        status, _ = await get(http, sim, f"/v1/tasks/{first['id']}")
        assert status == 404


# --- credits and counts -------------------------------------------------------------------


async def test_credits_are_billed_on_completion(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    _, before = await get(http, sim, "/v1/credits")
    assert before == {
        "success": True,
        "message": "ok",
        "data": {
            "token": {"remaining_credits": 100000, "used_credits": 0, "unlimited_credits": False},
            "user": {"remaining_credits": 100000, "used_credits": 0},
        },
    }
    standard = await create_task(http, sim, media)  # 4 s → 48 credits
    fast = await create_task(http, sim, media, model=FAST, video_urls=[media.url("clip7.mp4")])
    for task in (standard, fast):
        await sim.wait_until_settled(task["id"])
    _, after = await get(http, sim, "/v1/credits")
    assert after["data"]["user"]["used_credits"] == pytest.approx(48 + 7 * 6.8)
    assert after["data"]["token"]["remaining_credits"] == pytest.approx(100000 - 48 - 47.6)


async def test_every_request_is_counted(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    await post(http, sim, make_body(), headers={})  # 401
    await post(http, sim, b"garbage")  # 400
    sim.fail_next_create(503)
    await post(http, sim, make_body())
    task = await create_task(http, sim, media)
    for _ in range(3):
        await get(http, sim, f"/v1/tasks/{task['id']}")
    await get(http, sim, f"/v1/tasks/{task['id']}", headers={})  # unauthorized still counts
    assert sim.create_attempts == 4
    assert sim.request_counts(task["id"]) == {"create": 1, "get": 4, "callback": 0}
    stats = sim.stats()
    assert stats["create_attempts"] == 4 and stats["tasks"] == 1 and stats["gets"] == 4


# --- control API over HTTP ----------------------------------------------------------------


async def test_control_api_drives_the_simulator(
    frozen: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim = frozen
    base = sim.base_url + "/_sim"

    async def control(path: str, payload: Any = None) -> tuple[int, Any]:
        async with http.post(base + path, json=payload) as response:
            return response.status, await response.json()

    assert (
        await control(
            "/script", {"outcome": "failed", "error_code": "resource_exhausted", "processing_s": 5}
        )
    )[0] == 200
    assert (await control("/script", {"error_code": "bogus"}))[0] == 400
    failing = await create_task(http, sim, media)
    await control("/advance", {"seconds": 10})
    await sim.wait_until_settled(failing["id"])
    _, body = await get(http, sim, f"/v1/tasks/{failing['id']}")
    assert body["error"]["code"] == "resource_exhausted"

    await control("/fail-next-create", {"status": 429, "retry_after": 7})
    async with http.post(sim.base_url + CREATE, json=make_body(), headers=AUTH) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "7"
    await control("/fail-next-get", {"status": 503})
    status, _ = await get(http, sim, f"/v1/tasks/{failing['id']}")
    assert status == 503

    await control("/default-script", {"processing_s": 1000})
    task = await create_task(http, sim, media)
    assert (await control(f"/complete/{task['id']}"))[0] == 200
    await sim.wait_until_settled(task["id"])
    assert (await control(f"/expire-result/{task['id']}"))[0] == 200
    other = await create_task(http, sim, media)
    status, _ = await control(f"/fail/{other['id']}", {"code": "quota_exceeded"})
    assert status == 200
    assert (await control("/fail/task-unified-0-unknown0", {}))[0] == 404

    status, cfg = await control("/config", {"error_envelope": "legacy", "time_scale": 5})
    assert status == 200 and cfg["stats"]["clock"]["time_scale"] == 5
    assert sim.error_envelope == "legacy" and sim.time_scale == 5
    assert (await control("/config", {"time_scale": -1}))[0] == 400

    await control("/hang-next-create", {"count": 1})
    await control("/drop-next-create-connection", {})
    assert [f["kind"] for f in sim.stats()["pending_faults"]["create"]] == ["hang", "drop"]
    await control("/clear-faults")
    assert sim.stats()["pending_faults"]["create"] == []

    async with http.get(f"{base}/tasks/{other['id']}") as response:
        snapshot = await response.json()
    assert snapshot["status"] == "failed" and snapshot["counts"]["create"] == 1
    assert snapshot["request"]["video_urls"] == [media.url("clip4.mp4")]
    async with http.get(f"{base}/tasks/task-unified-0-unknown0") as response:
        assert response.status == 404
    async with http.get(f"{base}/stats") as response:
        stats = await response.json()
    assert stats["tasks"] == 3 and stats["create_attempts"] == 4
    async with http.get(f"{base}/tasks") as response:
        assert len((await response.json())["tasks"]) == 3


# --- command line -------------------------------------------------------------------------


async def test_command_line_serves_until_terminated(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.evolink_sim",
        "--port",
        "0",
        "--api-key",
        "sk-evo-cli",
        "--time-scale",
        "1000",
        "--envelope",
        "legacy",
        "--insecure-callbacks",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(2)]
        base = lines[0].split()[-1]
        assert base.startswith("http://127.0.0.1:") and lines[1].split()[-1] == "sk-evo-cli"
        headers = {"Authorization": "Bearer sk-evo-cli"}
        async with http.post(base + CREATE, json={}, headers=headers) as response:
            assert response.status == 400 and (await response.json())["error"]["code"] == 400
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_start_failure_cleans_up(sim: EvolinkSimulator) -> None:
    clash = EvolinkSimulator(port=sim.port)
    with pytest.raises(OSError):
        await clash.start()
    assert clash._work_dir is not None and not clash._work_dir.exists()
