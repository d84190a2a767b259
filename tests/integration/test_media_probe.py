"""Probing real files made at test time with PyAV and Pillow."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evolink.spec import MODEL_SPECS, EditModel
from bot.media.errors import MediaRejected
from bot.media.probe import ImageInfo, probe_image, probe_video
from bot.media.prober import Prober
from bot.media.sniff import MediaKind, sniff_file_sync
from bot.media.validation import ClipRules, check_video
from sandbox.media_samples import make_gif, make_jpeg, make_mp4, make_png, make_webp
from tests.hostile_media import pixel_bomb_png
from tests.media_factory import (
    make_animated,
    make_audio_only,
    make_faststart_mp4,
    truncate,
    video_packet_offsets,
)

STANDARD_RULES = ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD])


async def rejected_video(prober: Prober, path: Path) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        await probe_video(prober, path, STANDARD_RULES)
    return caught.value


async def rejected_image(prober: Prober, path: Path, index: int = 1) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        await probe_image(prober, path, index=index)
    return caught.value


# --- video -----------------------------------------------------------------------------------


async def test_mp4(prober: Prober, tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "clip.bin", seconds=4, width=128, height=96, fps=24)
    info = await probe_video(prober, path, STANDARD_RULES)
    assert info.kind is MediaKind.MP4
    assert info.duration_s == pytest.approx(4.0, abs=0.05)
    assert (info.width, info.height, info.fps) == (128, 96, 24.0)
    assert info.has_audio is False
    assert info.size_bytes == path.stat().st_size


async def test_mov_with_audio(prober: Prober, tmp_path: Path) -> None:
    # The file name lies on purpose: the kind comes from the bytes.
    path = make_mp4(tmp_path / "clip.mp4", seconds=3, container="mov", with_audio=True, fps=30)
    info = await probe_video(prober, path, STANDARD_RULES)
    assert info.kind is MediaKind.MOV
    assert info.has_audio is True
    assert info.fps == 30.0
    assert info.duration_s == pytest.approx(3.0, abs=0.05)


async def test_probed_lengths_outside_the_range_are_billed_clamped(
    prober: Prober, tmp_path: Path
) -> None:
    """§6: the provider bills a 12 s clip as 10 s and a 2 s clip as 3 s; neither is refused."""
    spec = MODEL_SPECS[EditModel.STANDARD]
    rules = ClipRules.for_model(spec)
    for seconds, billed in ((12, 10), (2, 3)):
        clip = make_mp4(tmp_path / f"clip{seconds}.mp4", seconds=seconds)
        info = await probe_video(prober, clip, STANDARD_RULES)
        check_video(info, rules)
        assert spec.billed_seconds(info.duration_s) == billed


async def test_probed_clip_under_the_floor_is_refused(prober: Prober, tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "blink.mp4", seconds=0.5, fps=10)
    info = await probe_video(prober, clip, STANDARD_RULES)
    with pytest.raises(MediaRejected) as caught:
        check_video(info, ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD]))
    assert caught.value.code == "video_too_short"
    assert caught.value.reason.startswith("The clip is 0.5 s long; clips must be at least 1 s")


async def test_audio_only_file_has_no_video_track(prober: Prober, tmp_path: Path) -> None:
    error = await rejected_video(prober, make_audio_only(tmp_path / "sound.mp4", seconds=3))
    assert (error.code, error.reason) == ("video_no_track", "The clip has no video track")


async def test_image_given_as_video(prober: Prober, tmp_path: Path) -> None:
    error = await rejected_video(prober, make_gif(tmp_path / "clip.mp4", 64, 64))
    assert error.reason == "That file is a GIF image, not a video: attach an .mp4 or .mov clip"


async def test_truncated_mp4_without_index(prober: Prober, tmp_path: Path) -> None:
    whole = make_mp4(tmp_path / "whole.mp4", seconds=4)  # moov at the end: cut off with the tail
    cut = truncate(whole, tmp_path / "cut.mp4", whole.stat().st_size // 2)
    error = await rejected_video(prober, cut)
    assert error.code == "video_truncated"  # the media data box runs past the end
    assert error.reason.startswith("The clip could not be read; it may be damaged or incomplete")


async def test_truncated_mp4_mid_sample(prober: Prober, tmp_path: Path) -> None:
    whole = make_faststart_mp4(tmp_path / "whole.mp4", seconds=4)
    offset, size = video_packet_offsets(whole)[48]
    error = await rejected_video(prober, truncate(whole, tmp_path / "cut.mp4", offset + size // 2))
    assert error.code in {"video_unreadable", "video_truncated"}


async def test_truncated_mp4_between_samples(prober: Prober, tmp_path: Path) -> None:
    # The index opens fine and every remaining sample is intact; only the missing second
    # half gives it away.
    whole = make_faststart_mp4(tmp_path / "whole.mp4", seconds=4)
    offset, _size = video_packet_offsets(whole)[48]
    error = await rejected_video(prober, truncate(whole, tmp_path / "cut.mp4", offset))
    assert error.code == "video_truncated"


async def test_intact_faststart_mp4_passes(prober: Prober, tmp_path: Path) -> None:
    clip = make_faststart_mp4(tmp_path / "whole.mp4", seconds=4)
    info = await probe_video(prober, clip, STANDARD_RULES)
    assert info.duration_s == pytest.approx(4.0, abs=0.05)


async def test_garbage_after_a_valid_header(prober: Prober, tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\0\0\0\x18ftypisom\0\0\2\0isomiso2" + bytes(range(256)) * 40)
    assert sniff_file_sync(path) is MediaKind.MP4
    assert (await rejected_video(prober, path)).code == "video_unreadable"


async def test_sample_data_overwritten(prober: Prober, tmp_path: Path) -> None:
    whole = make_faststart_mp4(tmp_path / "whole.mp4", seconds=2)
    data = bytearray(whole.read_bytes())
    offset, size = video_packet_offsets(whole)[0]  # the first keyframe
    data[offset : offset + size] = b"\xff" * size
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    assert (await rejected_video(prober, broken)).code == "video_unreadable"


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "kind"),
    [
        (make_png, MediaKind.PNG),
        (make_jpeg, MediaKind.JPEG),
        (make_webp, MediaKind.WEBP),
        (make_gif, MediaKind.GIF),  # readable; the rules refuse it later with a clear reason
    ],
)
async def test_still_images(
    prober: Prober, tmp_path: Path, maker: object, kind: MediaKind
) -> None:
    assert callable(maker)
    path = maker(tmp_path / "image.dat", 640, 360)
    assert await probe_image(prober, path) == ImageInfo(
        kind=kind, width=640, height=360, size_bytes=path.stat().st_size
    )


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "GIF"])
async def test_animations_are_refused(prober: Prober, tmp_path: Path, fmt: str) -> None:
    path = make_animated(tmp_path / "anim", 320, 320, fmt)  # type: ignore[arg-type]
    error = await rejected_image(prober, path, index=2)
    assert (error.code, error.reason) == (
        "image_animated",
        "Reference image 2 is animated; use a still JPEG, PNG or WebP image",
    )


@pytest.mark.parametrize("maker", [make_png, make_jpeg, make_webp])
async def test_truncated_images(prober: Prober, tmp_path: Path, maker: object) -> None:
    assert callable(maker)
    whole = maker(tmp_path / "whole", 640, 480)
    cut = truncate(whole, tmp_path / "cut", whole.stat().st_size * 2 // 3)
    error = await rejected_image(prober, cut, index=3)
    assert error.code == "image_unreadable"
    assert error.reason.startswith("Reference image 3 could not be read")


async def test_signature_that_does_not_match_the_data(prober: Prober, tmp_path: Path) -> None:
    jpeg = make_jpeg(tmp_path / "real.jpg", 400, 400).read_bytes()
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + jpeg)
    assert (await rejected_image(prober, fake)).code == "image_unreadable"


async def test_unsupported_image_kind(prober: Prober, tmp_path: Path) -> None:
    heic = tmp_path / "photo.jpg"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    error = await rejected_image(prober, heic, index=2)
    assert error.reason == "Reference image 2 is a HEIC image; use JPEG, PNG or WebP"


async def test_pixel_count_is_bounded_before_decoding(prober: Prober, tmp_path: Path) -> None:
    # 54 MP: over the bot's 50 MP and under Pillow's own bomb threshold, with no pixel data.
    path = tmp_path / "big.png"
    path.write_bytes(pixel_bomb_png(9000, 6000))
    error = await rejected_image(prober, path, index=1)
    assert (error.code, error.reason) == (
        "image_too_many_pixels",
        "Reference image 1 is 9000×6000 px; that is too many pixels to process. "
        "Scale it down and try again",
    )
