"""The bounded box-tree reader: what it reports, and how it refuses what is not an MP4."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from bot.media.mp4layout import Layout, LayoutError, read_layout
from sandbox.media_samples import make_mp4_bytes
from tests.hostile_media import DurationBox, box, fragmented_clip, full_box, sample_count_bomb
from tests.media_factory import make_keyframed_mp4

FTYP = box(b"ftyp", b"isom\0\0\2\0isom")


def layout_of(data: bytes) -> Layout:
    return read_layout(io.BytesIO(data), len(data))


def code_of(data: bytes) -> str:
    with pytest.raises(LayoutError) as caught:
        layout_of(data)
    return caught.value.code


def test_a_real_clip_with_sound() -> None:
    video, audio = layout_of(make_mp4_bytes(2, fps=10, with_audio=True)).tracks
    assert (video.handler, video.codec, video.width, video.height) == (b"vide", b"avc1", 64, 64)
    assert video.samples == 20 and video.seconds == pytest.approx(2)
    assert video.sample_seconds == pytest.approx(2)
    assert (audio.handler, audio.codec) == (b"soun", b"mp4a")


def test_quicktime_data_handler_does_not_hide_the_media_type() -> None:
    [video] = layout_of(make_mp4_bytes(1, fps=10, container="mov")).tracks
    assert video.handler == b"vide" and video.width == 64


def test_declared_counts_are_read_without_building_anything() -> None:
    [track] = layout_of(sample_count_bomb(60_000_000)).tracks
    assert track.samples == 60_000_000


def test_fragments_are_counted_per_track(tmp_path: Path) -> None:
    clip = make_keyframed_mp4(tmp_path / "live.mp4", 6, 1, fps=60, fragmented=True)
    layout = layout_of(clip.read_bytes())
    video, audio = layout.tracks
    assert (video.track_id, video.samples, video.fragment_samples) == (1, 0, 360)
    assert video.sample_seconds == pytest.approx(6, abs=0.1)
    assert audio.track_id == 2
    assert audio.fragment_samples == pytest.approx(6 * 48_000 / 1024, abs=2)
    assert layout.unlisted_fragment_samples == 0


@pytest.mark.parametrize("delta_in", ["tfhd", "trex", "trun"])
def test_fragment_durations_come_from_where_they_are_declared(delta_in: DurationBox) -> None:
    [video] = layout_of(fragmented_clip(500, delta=2, delta_in=delta_in)).tracks
    assert (video.fragment_samples, video.fragment_duration) == (500, 1000)
    assert video.sample_seconds == 1.0


def test_fragments_of_a_track_the_index_does_not_list() -> None:
    layout = layout_of(fragmented_clip(1000, track_id=7))
    assert layout.tracks[0].fragment_samples == 0
    assert layout.unlisted_fragment_samples == 1000
    trun = full_box(b"trun", 0, 0, struct.pack(">I", 5_000_000))
    moof = box(b"moof", box(b"traf", full_box(b"tfhd", 0, 0, struct.pack(">I", 1)), trun))
    assert layout_of(FTYP + box(b"moov") + moof + moof).unlisted_fragment_samples == 10_000_000


@pytest.mark.parametrize("version", [0, 1])
def test_track_ids_from_either_track_header_version(version: int) -> None:
    # tkhd (14496-12 §8.3.2): creation and modification times, then track_ID; 64-bit times
    # in version 1.
    times = struct.pack(">QQ" if version else ">II", 0, 0)
    tkhd = full_box(b"tkhd", version, 3, times, struct.pack(">I", 42), bytes(64))
    [track] = layout_of(FTYP + box(b"moov", box(b"trak", tkhd))).tracks
    assert track.track_id == 42


def test_large_size_and_to_the_end_boxes() -> None:
    wide = struct.pack(">I4sQ", 1, b"free", 16 + 4) + b"abcd"  # 64-bit size
    to_end = struct.pack(">I4s", 0, b"mdat") + bytes(100)
    assert layout_of(FTYP + box(b"moov") + wide + to_end).tracks == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (FTYP + box(b"free", bytes(8)), "video_unreadable"),  # no index at all
        (FTYP + box(b"moov") + b"PK\x03\x04\x14\x00\x00\x00", "video_unreadable"),  # not a box
        (FTYP + box(b"moov") + struct.pack(">I4s", 4, b"free"), "video_unreadable"),  # size < 8
        (FTYP + box(b"moov") + struct.pack(">I4s", 1000, b"mdat") + bytes(10), "video_truncated"),
        (FTYP + box(b"moov", struct.pack(">I4s", 64, b"trak")), "video_truncated"),
        (FTYP + box(b"moov") + b"\0\0", "video_truncated"),  # a header cut short
        (FTYP + box(b"moov") + box(b"free") * 20_001, "video_too_complex"),  # box budget
        (FTYP + box(b"moov", box(b"trak", box(b"mdia", full_box(b"mdhd", 0, 0)))),
         "video_unreadable"),  # a table shorter than its fields
        (FTYP + box(b"moov") + box(b"moof", box(b"traf", full_box(b"trun", 0, 0, bytes(4)))),
         "video_unreadable"),  # a track fragment that does not say whose it is
    ],
)
def test_what_is_not_a_readable_mp4(data: bytes, code: str) -> None:
    assert code_of(data) == code


def test_nesting_is_bounded() -> None:
    nested = box(b"stbl")
    for _ in range(10):
        nested = box(b"minf", nested)
    assert code_of(FTYP + box(b"moov", box(b"trak", nested))) == "video_too_complex"
