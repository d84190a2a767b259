"""The simulator fetches and checks input URLs after accepting a task, like EvoLink does.

A bad input never causes a 400: the create call succeeds and the task then fails with
`invalid_parameters` (video) or `image_processing_error` (images). A clip outside the
model's range is not bad input: it is billed clamped (§6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.evolink_sim import EvolinkSimulator, TaskScript
from sandbox.evolink_sim.testing import MediaServer
from sandbox.media_samples import (
    make_gif,
    make_jpeg,
    make_mp4,
    make_png,
    make_webp,
    pad_file,
)

API_KEY = "sk-evo-test"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MODEL = "kling-o1-video-edit"
FAST = "kling-o1-video-edit-fast"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evolink-sim-inputs")
    for seconds in (2, 4, 7, 12, 21):
        make_mp4(root / f"clip{seconds}.mp4", seconds)
    make_mp4(root / "clip4.mov", 4, container="mov", with_audio=True)
    make_mp4(root / "edge.mp4", 2.97, fps=100)  # 0.03 s short of 3 s: within tolerance
    make_mp4(root / "short.mp4", 2.9, fps=10)  # 0.1 s short: refused when refusing
    make_png(root / "ref.png")
    make_jpeg(root / "ref.jpg")
    make_webp(root / "ref.webp")
    make_gif(root / "ref.gif")
    (root / "png-named.mp4").write_bytes((root / "ref.png").read_bytes())
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00garbage" * 64)
    pad_file(root / "huge.png", 10 * MB + 1, source=root / "ref.png")
    (root / "truncated.png").write_bytes((root / "ref.png").read_bytes()[:40])
    return root


@pytest.fixture
async def sim() -> AsyncIterator[EvolinkSimulator]:
    async with EvolinkSimulator(api_key=API_KEY, time_scale=1000, allow_private_urls=True) as s:
        yield s


async def run_task(
    http: aiohttp.ClientSession,
    sim: EvolinkSimulator,
    video_url: str,
    images: list[str] | None = None,
    model: str = MODEL,
) -> dict[str, Any]:
    """Create a task (must be accepted), wait for its end, return the final GET body."""
    body: dict[str, Any] = {"model": model, "prompt": "edit", "video_urls": [video_url]}
    if images is not None:
        body["image_urls"] = images
    async with http.post(sim.base_url + "/v1/videos/generations", json=body, headers=AUTH) as r:
        assert r.status == 200, await r.text()
        task_id = (await r.json())["id"]
    await sim.wait_until_settled(task_id)
    async with http.get(f"{sim.base_url}/v1/tasks/{task_id}", headers=AUTH) as r:
        final: dict[str, Any] = await r.json()
    return final


def assert_failed(task: dict[str, Any], code: str, needle: str) -> None:
    assert task["status"] == "failed", task
    assert task["error"]["code"] == code and task["error"]["type"] == "task_error"
    assert needle in task["error"]["message"], task["error"]["message"]


@pytest.mark.parametrize(
    ("name", "model", "duration"),
    [
        ("clip4.mp4", MODEL, 4),
        ("clip4.mov", MODEL, 4),
        ("edge.mp4", MODEL, 3),
        ("clip7.mp4", FAST, 7),
        ("clip12.mp4", FAST, 12),
    ],
)
async def test_good_inputs_complete(
    sim: EvolinkSimulator,
    http: aiohttp.ClientSession,
    media: MediaServer,
    name: str,
    model: str,
    duration: int,
) -> None:
    images = [media.url(n) for n in ("ref.png", "ref.jpg", "ref.webp", "ref.png")]
    task = await run_task(http, sim, media.url(name), images, model=model)
    assert task["status"] == "completed" and task["task_info"]["video_duration"] == duration
    assert sorted(media.requests) == sorted(
        [f"/media/{name}"] + [u[len(media.base_url) :] for u in images]
    )


@pytest.mark.parametrize(
    ("name", "model", "reported", "billed"),
    [
        ("clip2.mp4", MODEL, 2, 36),  # under 3 s: billed as 3 s × 12
        ("short.mp4", MODEL, 3, 36),
        ("clip12.mp4", MODEL, 12, 120),  # over 10 s: billed as 10 s
        ("clip4.mp4", FAST, 4, 40.8),  # under 6 s: billed as 6 s × 6.8
        ("clip21.mp4", FAST, 21, 136),  # over 20 s: billed as 20 s
    ],
)
async def test_clips_outside_the_range_are_accepted_and_billed_clamped(
    sim: EvolinkSimulator,
    http: aiohttp.ClientSession,
    media: MediaServer,
    name: str,
    model: str,
    reported: int,
    billed: float,
) -> None:
    """§6: "billing clamps <3→3 and >10→10" (fast: 6 and 20); the simulator's default reading
    is that the upstream edits such clips and bills the clamped length."""
    task = await run_task(http, sim, media.url(name), model=model)
    assert task["status"] == "completed", task
    # §1.2 video_duration is the clip's length, not clamped; the bill is in usage.
    assert task["task_info"]["video_duration"] == reported
    assert task["usage"]["credits_reserved"] == pytest.approx(billed)
    assert sim.ledger.used == pytest.approx(billed) and sim.ledger.reserved == 0


# §6 leaves open whether out-of-range input is rejected: `refuse_out_of_range` models an
# upstream that does (a failed task, not billed), like any other bad video.
REFUSING = TaskScript(refuse_out_of_range=True)


@pytest.mark.parametrize(
    ("name", "model", "needle", "script"),
    [
        ("clip2.mp4", MODEL, "2.00 s long; kling-o1-video-edit accepts 3-10 s", REFUSING),
        ("short.mp4", MODEL, "2.90 s long", REFUSING),
        ("clip12.mp4", MODEL, "12.00 s long", REFUSING),
        ("clip4.mp4", FAST, "accepts 6-20 s", REFUSING),
        ("clip21.mp4", FAST, "21.00 s long", REFUSING),
        ("png-named.mp4", MODEL, "not an MP4/MOV file", None),
        ("corrupt.mp4", MODEL, "could not be decoded", None),
        ("missing.mp4", MODEL, "HTTP 404", None),
    ],
)
async def test_bad_videos_fail_the_task(
    sim: EvolinkSimulator,
    http: aiohttp.ClientSession,
    media: MediaServer,
    name: str,
    model: str,
    needle: str,
    script: TaskScript | None,
) -> None:
    if script is not None:
        sim.script_next_task(script)
    task = await run_task(http, sim, media.url(name), model=model)
    assert_failed(task, "invalid_parameters", needle)
    assert task["progress"] == 0
    assert sim.ledger.used == 0 and sim.ledger.reserved == 0


async def test_the_refusal_keeps_the_tolerance_for_container_rounding(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    sim.script_next_task(REFUSING)
    task = await run_task(http, sim, media.url("edge.mp4"))
    assert task["status"] == "completed", task


async def test_server_errors_and_unreachable_hosts(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await run_task(http, sim, f"{media.base_url}/status/503")
    assert_failed(task, "invalid_parameters", "HTTP 503")
    # Nothing listens on the server's port once it is stopped.
    closed = MediaServer(media.root)
    await closed.start()
    url = closed.url("clip4.mp4")
    await closed.stop()
    task = await run_task(http, sim, url)
    assert_failed(task, "invalid_parameters", "could not be fetched")


async def test_failed_inputs_are_not_billed(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    await run_task(http, sim, media.url("corrupt.mp4"))
    assert sim.ledger.used == 0 and sim.ledger.reserved == 0


async def test_video_larger_than_100_mb_is_refused_from_its_header(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    total = 100 * MB + 1
    task = await run_task(http, sim, f"{media.base_url}/stream/{total}?magic=mp4&length=1")
    assert_failed(task, "invalid_parameters", "larger than 100 MB")
    assert media.stream_sent[0] < total  # refused on Content-Length, body never drained


async def test_oversized_image_is_refused(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await run_task(http, sim, media.url("clip4.mp4"), [media.url("huge.png")])
    assert_failed(task, "image_processing_error", "image_urls[0] is larger than 10 MB")


async def test_streamed_image_stops_being_read_past_the_cap(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    total = 64 * MB  # no Content-Length: the cap must be enforced while reading
    stream = f"{media.base_url}/stream/{total}?magic=png"
    task = await run_task(http, sim, media.url("clip4.mp4"), [media.url("ref.png"), stream])
    assert_failed(task, "image_processing_error", "image_urls[1] is larger than 10 MB")
    assert media.stream_sent[0] < total


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("ref.gif", "is not a JPEG, PNG or WebP image"),
        ("clip4.mp4", "is not a JPEG, PNG or WebP image"),
        ("truncated.png", "could not be decoded as an image"),
        ("nothing.png", "could not be fetched: HTTP 404"),
    ],
)
async def test_bad_images_fail_the_task(
    sim: EvolinkSimulator,
    http: aiohttp.ClientSession,
    media: MediaServer,
    name: str,
    needle: str,
) -> None:
    task = await run_task(
        http, sim, media.url("clip4.mp4"), [media.url("ref.jpg"), media.url(name)]
    )
    assert_failed(task, "image_processing_error", f"image_urls[1] {needle}")


async def test_redirects_are_followed_only_on_loopback(
    sim: EvolinkSimulator, http: aiohttp.ClientSession, media: MediaServer
) -> None:
    task = await run_task(http, sim, f"{media.base_url}/redirect/clip4.mp4")
    assert task["status"] == "completed"
    away = f"{media.base_url}/redirect-to?url=http://10.20.30.40/clip.mp4"
    task = await run_task(http, sim, away)
    assert_failed(task, "invalid_parameters", "private or internal address")


async def test_strict_default_refuses_loopback_inputs(
    http: aiohttp.ClientSession, media: MediaServer
) -> None:
    async with EvolinkSimulator(api_key=API_KEY, time_scale=1000) as sim:
        task = await run_task(http, sim, media.url("clip4.mp4"))
        assert_failed(task, "invalid_parameters", "private or internal address")
        task = await run_task(http, sim, "https://cdn.example.com/clip.mp4")
        assert_failed(task, "invalid_parameters", "loopback only")
    assert media.requests == []  # nothing was fetched at all
