"""Hostile media through the real probe pool: each is refused with its own reason, and a
worker that runs out of memory or time, or is killed, is replaced for the next member."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.evolink.spec import MODEL_SPECS, EditModel
from bot.jobs.errors import EditRefused
from bot.media.errors import MediaRejected
from bot.media.probe import probe_image, probe_video
from bot.media.prober import ProbeFailed, ProbeLimits, Prober
from bot.media.validation import ClipRules
from sandbox.media_samples import make_mp4
from storage.models import JobState
from tests.hostile_media import (
    box,
    fragmented_clip,
    huge_dimensions_clip,
    lying_duration_clip,
    pixel_bomb_png,
    polyglot_clip,
    sample_count_bomb,
    synthetic_mp4,
    tiny_packet_clip,
    truncated_clip,
    unlisted_codec_clip,
)
from tests.integration.engine_harness import Harness, running_harness
from tests.media_factory import make_faststart_mp4, make_keyframed_mp4
from tests.probe_workers import announce_then_hang, hang

STANDARD = ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD])
FAST = ClipRules.for_model(MODEL_SPECS[EditModel.FAST])


async def refusal(prober: Prober, path: Path, rules: ClipRules = STANDARD) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        await probe_video(prober, path, rules)
    return caught.value


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: sample_count_bomb(), "video_too_many_frames"),
        (lambda: sample_count_bomb(600_000), "video_too_many_frames"),
        # The longest clip the bot cuts from (10 min) × 240 fps + 1.
        (lambda: sample_count_bomb(144_001), "video_too_many_frames"),
        (huge_dimensions_clip, "video_resolution_too_high"),
        (truncated_clip, "video_truncated"),
        (lying_duration_clip, "video_truncated"),
        (polyglot_clip, "video_unreadable"),
        (lambda: tiny_packet_clip(1000, 10), "video_frame_rate_too_high"),
        (lambda: tiny_packet_clip(1000, 2), "video_frame_rate_too_high"),
        (unlisted_codec_clip, "video_codec_unsupported"),
        # Fragmented files (14496-12 §8.8) list their samples in moof boxes: bounded per
        # track, and a track the index does not list is bounded as video.
        (lambda: fragmented_clip(50_000_000), "video_too_many_frames"),
        (lambda: fragmented_clip(144_001), "video_too_many_frames"),
        (lambda: fragmented_clip(144_001, track_id=7), "video_too_many_frames"),
        (lambda: fragmented_clip(10_000, delta=1, delta_in="tfhd"), "video_frame_rate_too_high"),
        (lambda: fragmented_clip(10_000, delta=1, delta_in="trex"), "video_frame_rate_too_high"),
        (lambda: fragmented_clip(10_000, delta=1, delta_in="trun"), "video_frame_rate_too_high"),
    ],
)
async def test_hostile_clips_are_refused_before_decoding(
    prober: Prober, tmp_path: Path, make: Callable[[], bytes], code: str
) -> None:
    path = tmp_path / "upload.mp4"
    path.write_bytes(make())
    assert (await refusal(prober, path)).code == code


async def test_refusals_name_the_models_range(prober: Prober, tmp_path: Path) -> None:
    path = tmp_path / "bomb.mp4"
    path.write_bytes(sample_count_bomb())
    assert (await refusal(prober, path)).reason == (
        "The clip lists 60,000,000 frames, more than a 10-minute clip can have. "
        "Export it again as a normal .mp4 (3–10 s, H.264) and try again"
    )
    path.write_bytes(tiny_packet_clip(1000, 2))
    assert (await refusal(prober, path, FAST)).reason == (
        "The clip has 1,000 frames per second; clips can have at most 240. "
        "Export it again at 24–60 fps (6–20 s) and try again"
    )
    path.write_bytes(unlisted_codec_clip(b"\x00ab\xff"))
    assert (await refusal(prober, path)).reason == (
        "The clip's video is stored as “ab”, which the bot does not read. "
        "Export it again as .mp4 with H.264 or H.265 video and try again"
    )


async def test_a_clip_longer_than_the_model_edits_has_room_for_its_frames(
    prober: Prober, tmp_path: Path
) -> None:
    # Over 20 s × 240 fps: a part is cut from such a clip, so the bound is the longest
    # clip the bot cuts from, whatever the model.
    path = tmp_path / "busy.mp4"
    path.write_bytes(sample_count_bomb(5000))
    assert (await refusal(prober, path, STANDARD)).code != "video_too_many_frames"
    assert (await refusal(prober, path, FAST)).code != "video_too_many_frames"


async def test_a_fragmented_clip_with_sound_is_measured(prober: Prober, tmp_path: Path) -> None:
    # As live recorders write it: an empty index, then one fragment per keyframe.
    path = make_keyframed_mp4(tmp_path / "live.mp4", 6, 1, fps=60, fragmented=True)
    info = await probe_video(prober, path, STANDARD)
    assert info.duration_s == pytest.approx(6, abs=0.1) and info.has_audio


async def test_an_index_past_the_readers_bounds_is_too_complex(
    prober: Prober, tmp_path: Path
) -> None:
    path = tmp_path / "boxes.mp4"
    path.write_bytes(sample_count_bomb(10) + box(b"free") * 20_001)
    assert (await refusal(prober, path)).reason == (
        "The clip could not be checked within the bot's limits; export it again as a "
        "normal .mp4 (3–10 s, H.264) and try again"
    )


async def test_pixel_bomb_image_is_refused(prober: Prober, tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(pixel_bomb_png())
    with pytest.raises(MediaRejected) as caught:
        await probe_image(prober, path, index=2)
    assert caught.value.code == "image_too_many_pixels"
    assert caught.value.reason.startswith("Reference image 2 ")


# --- the pool's limits -------------------------------------------------------------------------


@pytest.fixture
async def strict() -> AsyncIterator[Prober]:
    """One worker, 64 MB over its start, one second per probe: limits a test can reach."""
    limits = ProbeLimits(workers=1, memory_bytes=64 * 1024 * 1024, timeout_s=1.0)
    async with Prober.running(limits) as prober:
        yield prober


async def assert_next_probe_works(prober: Prober, tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "next.mp4", seconds=4)
    assert (await probe_video(prober, clip, STANDARD)).duration_s == pytest.approx(4, abs=0.05)


async def test_an_image_over_the_memory_cap_is_refused(strict: Prober, tmp_path: Path) -> None:
    # 49 MP passes the pixel cap, but decoding it takes 196 MB: more than this worker may have.
    path = tmp_path / "big.png"
    path.write_bytes(pixel_bomb_png(7000, 7000, rgba=True))
    with pytest.raises(MediaRejected) as caught:
        await probe_image(strict, path, index=3)
    assert (caught.value.code, caught.value.reason) == (
        "image_too_complex",
        "Reference image 3 could not be checked within the bot's limits; "
        "save it again as JPEG or PNG and try again",
    )
    await assert_next_probe_works(strict, tmp_path)


async def test_a_video_index_over_the_memory_cap_is_refused(
    strict: Prober, tmp_path: Path
) -> None:
    # Rules for 100,000 s clips let 20 M samples at 240 fps past the index checks;
    # FFmpeg's index of them (~700 MB) then meets the cap and is given up.
    roomy = STANDARD.model_copy(update={"model_max_s": 100_000, "source_max_s": 100_000})
    path = tmp_path / "bomb.mp4"
    path.write_bytes(
        synthetic_mp4(samples=20_000_000, sample_size=1, timescale=240, delta=1, payload=b"x")
    )
    assert (await refusal(strict, path, roomy)).code in {"video_unreadable", "video_too_complex"}
    await assert_next_probe_works(strict, tmp_path)


async def test_a_probe_over_time_is_killed(strict: Prober, tmp_path: Path) -> None:
    with pytest.raises(ProbeFailed, match=r"timed out after 1 s"):
        await strict.run(hang)
    await assert_next_probe_works(strict, tmp_path)


async def test_a_worker_killed_mid_probe_fails_that_probe_only(
    strict: Prober, tmp_path: Path
) -> None:
    announce = tmp_path / "busy-pid"
    os.mkfifo(announce)  # reading it waits until the worker has written its pid
    busy = asyncio.create_task(strict.run(announce_then_hang, announce))
    os.kill(int(await asyncio.to_thread(announce.read_text)), signal.SIGKILL)
    # Killed once pebble knew the task was running; if the kill beat its bookkeeping, the
    # probe is retried once on a fresh pool and then meets the time limit instead.
    with pytest.raises(ProbeFailed, match=r"killed by signal 9|timed out"):
        await busy
    await assert_next_probe_works(strict, tmp_path)


async def test_a_worker_dying_while_idle_costs_no_probe(strict: Prober, tmp_path: Path) -> None:
    os.kill(await strict.run(os.getpid), signal.SIGKILL)
    await assert_next_probe_works(strict, tmp_path)


# --- through the engine -----------------------------------------------------------------------


async def test_bomb_sent_as_an_edit_is_refused_with_its_reason(harness: Harness) -> None:
    services = await harness.start()
    (harness.files.root / "bomb.mp4").write_bytes(sample_count_bomb())
    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(harness.request(harness.files.url("bomb.mp4")))
    assert refused.value.code == "video_too_many_frames"
    [job] = await services.jobs.search(1)
    assert job.state is JobState.REJECTED
    assert harness.sim.create_attempts == 0


async def test_services_stop_their_probe_workers(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as harness:  # no shared pool: the services own one
        services = await harness.start()
        workers = {await services.prober.run(os.getpid) for _ in range(4)}
        await harness.stop()
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_clip_over_the_time_limit_is_refused(tmp_path: Path) -> None:
    # Rules for a model that edits 100,000 s clips let 720,000 tiny packets past the checks;
    # reading them all takes seconds, more than this pool's half second.
    roomy = STANDARD.model_copy(update={"model_max_s": 100_000, "source_max_s": 100_000})
    path = tmp_path / "slow.mp4"
    path.write_bytes(tiny_packet_clip(240, 3000))
    async with Prober.running(ProbeLimits(workers=1, timeout_s=0.5)) as hasty:
        error = await refusal(hasty, path, roomy)
        assert (error.code, error.reason) == (
            "video_too_complex",
            "The clip could not be checked within the bot's limits; export it again as a "
            "normal .mp4 (3–100000 s, H.264) and try again",
        )
        await assert_next_probe_works(hasty, tmp_path)


async def test_no_packet_past_the_longest_part_the_model_edits_is_read(
    prober: Prober, tmp_path: Path
) -> None:
    # 30 s at 10 fps whose packet at 12 s is damaged: FFmpeg flags it corrupt when it is
    # read, which makes the probe refuse the clip. A standard-model probe reads up to 10.5 s
    # (10 s + slack) and never meets it; from 5 s on, or for the fast model (20 s), it does.
    path = tmp_path / "damaged-tail.mp4"
    path.write_bytes(synthetic_mp4(
        samples=300, sample_size=8, timescale=10, delta=1, width=16, height=16,
        decodable=True, cut_at=120,
    ))
    assert (await probe_video(prober, path, STANDARD)).duration_s == pytest.approx(30)
    with pytest.raises(MediaRejected) as later:
        await probe_video(prober, path, STANDARD, start_s=5.0)
    assert later.value.code == "video_unreadable"
    assert (await refusal(prober, path, FAST)).code == "video_unreadable"


async def test_a_long_clip_cut_after_what_is_read_is_still_incomplete(
    prober: Prober, tmp_path: Path
) -> None:
    # The probe stops reading samples after 10.5 s of a standard-model clip, but the box
    # tree still shows that the last third of this 30 s clip is missing.
    whole = make_faststart_mp4(tmp_path / "whole.mp4", seconds=30, fps=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    assert (await probe_video(prober, whole, STANDARD)).duration_s == pytest.approx(30, abs=0.1)
    assert (await refusal(prober, cut)).code == "video_truncated"
