"""Long clips cut to the model's maximum from the member's `start`, through the engine and
the probe workers, against the simulator (which measures and bills the file it fetched)."""

from __future__ import annotations

import contextlib
import math
import os
import struct
from pathlib import Path

import av
import pytest

from bot.evolink.spec import MODEL_SPECS, EditModel, whole_seconds_up
from bot.i18n import english
from bot.jobs.errors import EditRefused
from bot.jobs.messages import billing_note
from bot.jobs.models import Requester
from bot.media.cut import cut_clip
from bot.media.errors import MediaRejected
from bot.media.probe import probe_video
from bot.media.prober import ProbeLimits, Prober
from bot.media.validation import ClipRules, CutPlan
from storage.models import Job, JobState, LedgerKind, MediaRole
from tests.integration.engine_harness import Harness
from tests.integration.test_recovery import SimulatedCrash, crash_after_entering
from tests.media_factory import make_keyframed_mp4

pytestmark = pytest.mark.both_engines

STANDARD = ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD])


def keyframes_of(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.time_base is not None
        return [
            float(packet.pts * video.time_base)
            for packet in container.demux(video)
            if packet.is_keyframe and packet.pts is not None
        ]


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        assert container.duration is not None
        return container.duration / av.time_base


async def rehosted_clip(harness: Harness, job: Job) -> Path:
    [media] = await harness.live.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    return harness.live.store.path_of(media)  # type: ignore[attr-defined, no-any-return]


async def submit(harness: Harness, name: str, start_s: float) -> Job:
    request = harness.request(harness.files.url(name)).model_copy(update={"start_s": start_s})
    return await harness.live.engine.submit(request)


async def assert_delivered_and_billed(harness: Harness, job: Job, seconds: int) -> None:
    await harness.notifier.wait_for_delivery(job.id)
    await harness.live.tracker.idle()
    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    entries = await harness.live.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, seconds), (LedgerKind.SETTLE, 0)
    ]
    # The simulator measured the file it fetched (the cut one) and billed that.
    assert done.provider_video_duration == seconds
    assert harness.sim.ledger.used == done.credits == seconds * 12


async def test_a_25_s_clip_from_5_s_is_cut_at_a_keyframe_to_10_s_and_billed_10_s(
    harness: Harness,
) -> None:
    await harness.start()
    make_keyframed_mp4(harness.files.root / "long.mp4", seconds=25, keyframe_every_s=1.0)
    job = await submit(harness, "long.mp4", 5.0)
    assert job.state is JobState.SUBMITTED
    cut = job.source.cut
    assert cut is not None and (cut.start_s, cut.duration_s) == (5.0, 10.0)
    assert cut.source_duration_s == pytest.approx(25.0, abs=0.05)  # AAC adds a few ms
    assert (job.billed_seconds, job.duration_s) == (10, 10.0)
    assert english(billing_note(job)) == "editing 0:05–0:15 of your 0:25 clip, billed as 10 s"
    rehosted = await rehosted_clip(harness, job)
    assert duration_of(rehosted) == 10.0
    assert keyframes_of(rehosted)[:3] == [0.0, 1.0, 2.0]  # copied, not encoded again
    await assert_delivered_and_billed(harness, job, 10)


async def test_a_clip_without_a_keyframe_near_the_start_is_encoded_again_from_it(
    harness: Harness,
) -> None:
    await harness.start()
    # One keyframe every 30 s: the nearest one before 7.3 s is 7.3 s away.
    make_keyframed_mp4(harness.files.root / "gop.mp4", seconds=30, keyframe_every_s=30.0)
    job = await submit(harness, "gop.mp4", 7.3)
    assert job.source.cut is not None and job.source.cut.start_s == 7.3
    assert english(billing_note(job)).startswith("editing 0:07.3–0:17.")
    assert english(billing_note(job)).endswith(" of your 0:30 clip, billed as 10 s")
    rehosted = await rehosted_clip(harness, job)
    assert 9.9 <= duration_of(rehosted) <= 10.0
    assert keyframes_of(rehosted)[0] < 0.05  # the re-encoded part starts with a picture
    await assert_delivered_and_billed(harness, job, 10)


async def test_a_start_in_a_clip_that_fits_edits_and_bills_the_part_from_there(
    harness: Harness,
) -> None:
    await harness.start()
    make_keyframed_mp4(harness.files.root / "short.mp4", seconds=8, keyframe_every_s=1.0)
    job = await submit(harness, "short.mp4", 3.0)
    assert english(billing_note(job)) == "editing 0:03–0:08 of your 0:08 clip, billed as 5 s"
    await assert_delivered_and_billed(harness, job, 5)


async def test_a_quicktime_clip_with_pcm_sound_is_cut_into_quicktime(harness: Harness) -> None:
    """MP4 cannot hold PCM sound: the cut keeps the clip's own container."""
    await harness.start()
    make_keyframed_mp4(
        harness.files.root / "camera.mov", seconds=14, keyframe_every_s=1.0, container="mov",
        audio_codec="pcm_s16le",
    )
    job = await submit(harness, "camera.mov", 2.0)
    [video] = [v for v in job.source.validated if v.role is MediaRole.INPUT_VIDEO]
    assert (video.filename, video.content_type) == ("input.mov", "video/quicktime")
    assert english(billing_note(job)).startswith("editing 0:02–0:12 of your 0:14 clip")
    with av.open(str(await rehosted_clip(harness, job))) as cut:
        assert [s.codec_context.name for s in cut.streams] == ["h264", "pcm_s16le"]
    await assert_delivered_and_billed(harness, job, 10)


async def test_a_clip_just_over_the_maximum_is_cut_from_0(harness: Harness) -> None:
    await harness.start()
    job = await harness.live.engine.submit(harness.request(harness.files.clip(seconds=12)))
    assert english(billing_note(job)).startswith("editing 0:00–0:10 of your 0:12 clip")
    await assert_delivered_and_billed(harness, job, 10)


@pytest.mark.parametrize("start", [-1.0, math.nan, math.inf])
async def test_a_start_that_is_no_second_of_a_clip_starts_nothing(
    harness: Harness, start: float
) -> None:
    await harness.start()
    with pytest.raises(EditRefused) as caught:
        await submit(harness, "never-fetched.mp4", start)
    assert caught.value.code == "start_invalid"
    assert await harness.live.jobs.search(1) == []  # no job, no attempt counted
    assert harness.files.requests == []  # nothing downloaded


@pytest.mark.parametrize(
    ("start", "code", "says"),
    [
        (9.0, "start_past_end", "Your clip is 0:08 long; `start` 0:09 is past its end."),
        (6.5, "start_leaves_too_little", "Your clip is 0:08 long; from `start` 0:06.5 only "
         "1.5 s are left, and this model edits at least 3 s."),
    ],
)
async def test_a_start_the_clip_cannot_honour_is_refused_and_nothing_is_billed(
    harness: Harness, start: float, code: str, says: str
) -> None:
    await harness.start()
    make_keyframed_mp4(harness.files.root / "short.mp4", seconds=8, keyframe_every_s=1.0)
    with pytest.raises(EditRefused) as caught:
        await submit(harness, "short.mp4", start)
    assert caught.value.code == code and caught.value.reason.startswith(says)
    [job] = await harness.live.jobs.search(1)
    assert job.state is JobState.REJECTED and job.billed_seconds is None
    assert harness.sim.create_attempts == 0


def understated_clip(path: Path, seconds: int, claimed: int) -> Path:
    """A real clip whose movie and video media headers claim ``claimed`` seconds."""
    make_keyframed_mp4(path, seconds=seconds, keyframe_every_s=1.0, with_audio=False)
    data = bytearray(path.read_bytes())
    for header in (b"mvhd", b"mdhd"):  # v0: type, version/flags, creation, modification
        at = data.index(header, data.index(b"moov")) + 16
        (timescale,) = struct.unpack_from(">I", data, at)
        struct.pack_into(">I", data, at + 4, claimed * timescale)
    path.write_bytes(bytes(data))
    return path


async def test_a_clip_whose_header_understates_its_length_is_still_cut_to_the_maximum(
    harness: Harness,
) -> None:
    await harness.start()
    understated_clip(harness.files.root / "liar.mp4", seconds=25, claimed=5)
    job = await submit(harness, "liar.mp4", 0.0)
    assert job.source.cut is not None and job.billed_seconds == 10
    assert whole_seconds_up(duration_of(await rehosted_clip(harness, job))) <= 10
    await assert_delivered_and_billed(harness, job, 10)


@pytest.mark.parametrize(("fps", "start"), [(7, 0.0), (24, 3.0), (25, 0.5), (30, 2.25)])
async def test_a_cut_is_never_billed_over_the_maximum(
    prober: Prober, tmp_path: Path, fps: int, start: float
) -> None:
    source = make_keyframed_mp4(tmp_path / "in.mp4", seconds=14, keyframe_every_s=0.5, fps=fps)
    plan = CutPlan(start_s=start, length_s=10)
    await cut_clip(prober, source, tmp_path / "out.mp4", plan, STANDARD)
    assert whole_seconds_up(duration_of(tmp_path / "out.mp4")) <= 10


async def test_a_cut_stops_at_the_models_size_cap(prober: Prober, tmp_path: Path) -> None:
    source = make_keyframed_mp4(tmp_path / "in.mp4", seconds=14, keyframe_every_s=1.0)
    small = STANDARD.model_copy(update={"max_bytes": 2_000})
    with pytest.raises(MediaRejected) as caught:
        await cut_clip(prober, source, tmp_path / "out.mp4", CutPlan(start_s=0, length_s=10), small)
    assert caught.value.code == "video_cut_too_large"
    assert (tmp_path / "out.mp4").stat().st_size < 2_000 + 64 * 1024  # stopped near the cap


async def test_a_part_encoded_again_up_to_the_clips_end_keeps_its_last_pictures(
    prober: Prober, tmp_path: Path
) -> None:
    source = make_keyframed_mp4(tmp_path / "in.mp4", seconds=12, keyframe_every_s=30.0)
    plan = CutPlan(start_s=4.5, length_s=7.5)  # what plan_cut asks of the clip's last 7.5 s
    cut = await cut_clip(prober, source, tmp_path / "out.mp4", plan, STANDARD)
    assert not cut.copied and cut.start_s == 4.5
    with av.open(str(tmp_path / "out.mp4")) as out:
        pictures = sum(1 for _ in out.decode(video=0))
    assert pictures == 180  # 7.5 s at 24 fps: none held back by the decoder is lost


async def test_a_rerun_sends_the_cut_part_again_without_cutting_it_again(
    harness: Harness,
) -> None:
    await harness.start()
    make_keyframed_mp4(harness.files.root / "long.mp4", seconds=25, keyframe_every_s=1.0)
    first = await submit(harness, "long.mp4", 5.0)
    await harness.notifier.wait_for_delivery(first.id)
    again = await harness.live.actions.rerun(first.id, first.guild_id, Requester(user_id=7))
    assert again.source.cut is None and again.billed_seconds == 10
    assert english(billing_note(again)) == "billed as 10 s"
    [archived] = [v for v in first.source.validated if v.role is MediaRole.INPUT_VIDEO]
    [sent] = [v for v in again.source.validated if v.role is MediaRole.INPUT_VIDEO]
    assert sent.sha256 == archived.sha256  # the part the member chose, byte for byte
    assert harness.files.requests == ["long.mp4"]  # the original was fetched once
    await harness.notifier.wait_for_delivery(again.id)
    await harness.live.tracker.idle()
    done = await harness.job(again.id)
    assert done.state is JobState.DELIVERED and done.provider_video_duration == 10
    assert harness.sim.ledger.used == 2 * 120


@pytest.mark.parametrize("state", [JobState.FETCHING, JobState.RESERVED])
async def test_a_restart_while_cutting_or_after_sends_the_same_part(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, state: JobState
) -> None:
    """Resumed from FETCHING the clip is fetched and cut again from the same `start`; from
    RESERVED the cut part waiting in the scratch folder is published."""
    await harness.start()
    make_keyframed_mp4(harness.files.root / "long.mp4", seconds=25, keyframe_every_s=1.0)
    crashes = crash_after_entering(monkeypatch, state)
    with contextlib.suppress(SimulatedCrash):
        await submit(harness, "long.mp4", 5.0)
    await harness.stop()
    monkeypatch.undo()

    await harness.start()
    [job_id] = crashes.job_ids
    await assert_delivered_and_billed(harness, await harness.job(job_id), 10)
    job = await harness.job(job_id)
    assert job.source.cut is not None and job.source.cut.start_s == 5.0
    assert duration_of(await rehosted_clip(harness, job)) == 10.0


async def test_a_cut_past_the_time_limit_is_refused_and_its_worker_replaced(
    tmp_path: Path,
) -> None:
    # A source whose reading never ends (a pipe nobody writes to) stands for a cut that
    # takes too long, however fast this machine decodes: only the time limit stops it.
    endless = tmp_path / "endless.mp4"
    os.mkfifo(endless)
    source = make_keyframed_mp4(tmp_path / "in.mp4", seconds=60, keyframe_every_s=60.0)
    limits = ProbeLimits(workers=1, timeout_s=30.0, cut_timeout_s=0.5)
    async with Prober.running(limits) as hasty:
        with pytest.raises(MediaRejected) as caught:
            await cut_clip(hasty, endless, tmp_path / "out.mp4",
                           CutPlan(start_s=45, length_s=10), STANDARD)
        assert caught.value.code == "video_too_complex"
        # The next member's probe finds a working pool.
        info = await probe_video(hasty, source, STANDARD)
        assert info.duration_s == pytest.approx(60.0, abs=0.05)
