"""A small, bounded reader of an MP4/MOV file's box tree: what the index declares, not decoded.

FFmpeg builds an entry per declared sample when it opens a file, so a few bytes of index can
cost gigabytes. Reading the declarations first (ISO/IEC 14496-12 §4.2 box structure, §8 boxes;
QuickTime File Format for the same atoms) lets the prober refuse such files before any
decoder runs. Every read is bounded: tree depth, number of boxes, and the size of the boxes
read whole (``moov``, and each ``moof`` of a fragmented file); a box whose size runs past its
parent is a damaged file. Fragments (§8.8) name their track by track_ID, so their samples
and durations are added to that track's, wherever in the file they come.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

# A 20 s clip at 240 fps indexes 4,800 video samples (about 100 KB of moov); 16 MB is room for
# an hour of 60 fps video with audio, and bounds what one probe holds in memory here.
MAX_INDEX_BYTES: Final = 16 * 1024 * 1024
_MAX_DEPTH: Final = 8
# Fragmented files carry one moof per fragment (typically per second or per frame).
_MAX_BOXES: Final = 20_000
_CONTAINERS: Final = frozenset({b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf"})


class LayoutError(Exception):
    """The box tree is not a readable MP4; ``code`` says how (a ``MediaRejected`` code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Track:
    track_id: int = 0  # tkhd; fragments name their track by it
    handler: bytes = b""  # b"vide", b"soun", …
    codec: bytes = b""  # first sample entry's type, e.g. b"avc1"
    width: int = 0  # coded size from the visual sample entry
    height: int = 0
    timescale: int = 0
    duration: int = 0  # mdhd, in timescale units
    samples: int = 0  # the largest count any table (stsz, stz2, stts, ctts) declares
    stts_duration: int = 0  # the sum of the declared sample durations
    fragment_samples: int = 0  # declared by the runs (trun) of this track's fragments
    fragment_duration: int = 0  # their declared durations, in timescale units

    @property
    def seconds(self) -> float | None:
        return self.duration / self.timescale if self.timescale and self.duration else None

    @property
    def all_samples(self) -> int:
        """What FFmpeg indexes for this track: the index's samples and the fragments'."""
        return self.samples + self.fragment_samples

    @property
    def sample_seconds(self) -> float | None:
        if not self.timescale:
            return None
        return (self.stts_duration + self.fragment_duration) / self.timescale


@dataclass
class Layout:
    tracks: list[Track] = field(default_factory=list)
    # Declared in fragments of a track_ID no trak has: nobody can say what they are.
    unlisted_fragment_samples: int = 0


@dataclass
class _Runs:
    """What the fragments declare for one track_ID, wherever in the file they are."""

    samples: int = 0
    duration: int = 0  # declared by trun entries or the fragment header's default
    samples_of_track_default: int = 0  # they last the track's default (trex) each


class _Budget:
    """Boxes left to read in this file: a flat list of a million empty boxes is a bomb too."""

    def __init__(self, boxes: int) -> None:
        self.boxes = boxes

    def spend(self) -> None:
        self.boxes -= 1
        if self.boxes < 0:
            raise LayoutError("video_too_complex")


def read_layout(file: BinaryIO, size: int) -> Layout:
    """Walk the top level by seeking past payloads; read ``moov`` and ``moof`` boxes whole."""
    layout = Layout()
    budget = _Budget(_MAX_BOXES)
    found_moov = False
    runs: dict[int, _Runs] = {}
    default_durations: dict[int, int] = {}

    def head_at(offset: int) -> bytes:
        file.seek(offset)
        return file.read(16)

    for kind, start, end in _each_box(head_at, 0, size, budget):
        if kind in (b"moov", b"moof"):
            if end - start > MAX_INDEX_BYTES:
                raise LayoutError("video_too_complex")
            file.seek(start)
            payload = file.read(end - start)
            try:
                if kind == b"moov":
                    found_moov = True
                    _read_moov(payload, layout, default_durations, budget)
                else:
                    _read_fragment(payload, runs, budget)
            except (struct.error, IndexError) as exc:  # a box shorter than its fields
                raise LayoutError("video_unreadable") from exc
    if not found_moov:
        raise LayoutError("video_unreadable")
    _attach_runs(layout, runs, default_durations)
    return layout


def _each_box(
    head_at: Callable[[int], bytes], start: int, end: int, budget: _Budget
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``[start, end)``; ``head_at(offset)``
    returns the (up to 16) bytes of a box header, so payloads are never read here."""
    at = start
    while at < end:
        kind, payload_start, box_end = _header(head_at(at), at, end, budget)
        yield kind, payload_start, box_end
        at = box_end


def _header(head: bytes, at: int, end: int, budget: _Budget) -> tuple[bytes, int, int]:
    budget.spend()
    if end - at < 8 or len(head) < 8:
        raise LayoutError("video_truncated")
    size, kind = struct.unpack_from(">I4s", head)
    # Four-character codes are printable; anything else means this is not a box at all
    # (e.g. a ZIP archive behind an MP4 signature).
    if not all(0x20 <= byte < 0x7F for byte in kind):
        raise LayoutError("video_unreadable")
    header_size = 8
    if size == 1:  # 64-bit size follows the type
        if len(head) < 16:
            raise LayoutError("video_truncated")
        (size,) = struct.unpack_from(">Q", head, 8)
        header_size = 16
    elif size == 0:  # the box runs to the end of its container
        size = end - at
    if size < header_size:
        raise LayoutError("video_unreadable")
    if at + size > end:
        raise LayoutError("video_truncated")
    return kind, at + header_size, at + size


def _children(
    data: bytes, start: int, end: int, budget: _Budget
) -> Iterator[tuple[bytes, int, int]]:
    return _each_box(lambda at: data[at : at + 16], start, end, budget)


def _read_moov(
    data: bytes, layout: Layout, default_durations: dict[int, int], budget: _Budget
) -> None:
    for kind, start, end in _children(data, 0, len(data), budget):
        if kind == b"trak":
            track = Track()
            _read_track(data, start, end, track, budget, depth=1)
            layout.tracks.append(track)
        elif kind == b"mvex":
            for extends, body, _stop in _children(data, start, end, budget):
                if extends == b"trex":  # §8.8.3: track_ID, description, duration, size, flags
                    track_id, _description, duration = struct.unpack_from(">III", data, body + 4)
                    default_durations.setdefault(track_id, duration)


def _read_track(
    data: bytes, start: int, end: int, track: Track, budget: _Budget, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise LayoutError("video_too_complex")
    for kind, body, stop in _children(data, start, end, budget):
        if kind in _CONTAINERS:
            _read_track(data, body, stop, track, budget, depth + 1)
            continue
        _read_leaf(kind, data[body:stop], track)


def _read_leaf(kind: bytes, payload: bytes, track: Track) -> None:
    if kind == b"tkhd":  # §8.3.2: track_ID after the creation and modification times
        (track.track_id,) = struct.unpack_from(">I", payload, 20 if payload[0] == 1 else 12)
    elif kind == b"hdlr" and not track.handler:
        # QuickTime has a second hdlr in minf naming the data handler ("alis", "url "); the
        # media's own, in mdia, comes first.
        track.handler = payload[8:12]
    elif kind == b"mdhd":
        if payload[0] == 1:
            track.timescale, track.duration = struct.unpack_from(">IQ", payload, 20)
        else:
            track.timescale, track.duration = struct.unpack_from(">II", payload, 12)
    elif kind == b"stsd":
        (entries,) = struct.unpack_from(">I", payload, 4)
        if entries:
            track.codec = payload[12:16]
            if track.handler == b"vide":
                # Visual sample entry: header(8) reserved(6) index(2) reserved(16) width height.
                track.width, track.height = struct.unpack_from(">HH", payload, 8 + 32)
    elif kind in (b"stsz", b"stz2"):
        (count,) = struct.unpack_from(">I", payload, 8)
        track.samples = max(track.samples, count)
    elif kind in (b"stts", b"ctts"):
        total, duration = _run_lengths(payload)
        track.samples = max(track.samples, total)
        if kind == b"stts":
            track.stts_duration = duration


def _run_lengths(payload: bytes) -> tuple[int, int]:
    """Sum of (count, value) entries of stts/ctts; entries past the box are not counted."""
    (entries,) = struct.unpack_from(">I", payload, 4)
    entries = min(entries, (len(payload) - 8) // 8)
    total = duration = 0
    for count, value in struct.iter_unpack(">II", payload[8 : 8 + entries * 8]):
        total += count
        duration += count * value
    return total, duration


# tfhd flags (§8.8.7) saying which optional fields follow the track_ID, in this order.
_TFHD_FIELDS: Final = ((0x01, 8), (0x02, 4))  # base data offset, sample description index
_TFHD_DEFAULT_DURATION: Final = 0x08
# trun flags (§8.8.8): fields before the sample entries, and the fields of each entry.
_TRUN_DATA_OFFSET, _TRUN_FIRST_SAMPLE_FLAGS = 0x01, 0x04
_TRUN_SAMPLE_DURATION: Final = 0x100
_TRUN_ENTRY_FIELDS: Final = (0x100, 0x200, 0x400, 0x800)  # duration, size, flags, time offset


def _read_fragment(data: bytes, runs: dict[int, _Runs], budget: _Budget) -> None:
    """Add what the runs of one moof declare to their tracks' totals."""
    for kind, start, end in _children(data, 0, len(data), budget):
        if kind == b"traf":
            _read_track_fragment(data, start, end, runs, budget)


def _read_track_fragment(
    data: bytes, start: int, end: int, runs: dict[int, _Runs], budget: _Budget
) -> None:
    boxes = [(kind, data[body:stop]) for kind, body, stop in _children(data, start, end, budget)]
    header = next((payload for kind, payload in boxes if kind == b"tfhd"), None)
    if header is None:  # §8.8.6: every traf has one; it names the track
        raise LayoutError("video_unreadable")
    flags, track_id = struct.unpack_from(">II", header)
    default_duration = None
    if flags & _TFHD_DEFAULT_DURATION:
        at = 8 + sum(size for flag, size in _TFHD_FIELDS if flags & flag)
        (default_duration,) = struct.unpack_from(">I", header, at)
    track = runs.setdefault(track_id, _Runs())
    for kind, payload in boxes:
        if kind == b"trun":
            _read_run(payload, default_duration, track)


def _read_run(run: bytes, default_duration: int | None, track: _Runs) -> None:
    """Counts the samples the run declares, which is what FFmpeg allocates index entries for,
    and their durations. Entries the box is too short for last nothing: the reading that
    makes the frame rate highest."""
    flags, count = struct.unpack_from(">II", run)
    track.samples += count
    if not flags & _TRUN_SAMPLE_DURATION:
        if default_duration is None:
            track.samples_of_track_default += count
        else:
            track.duration += count * default_duration
        return
    at = 8 + 4 * bool(flags & _TRUN_DATA_OFFSET) + 4 * bool(flags & _TRUN_FIRST_SAMPLE_FLAGS)
    fields = sum(1 for flag in _TRUN_ENTRY_FIELDS if flags & flag)
    present = min(count, max(0, len(run) - at) // (4 * fields))
    # Summed in C, not per entry in Python: a run may list millions ("I" is 4 bytes on the
    # platforms CPython supports).
    table = array("I", run[at : at + present * 4 * fields])
    if sys.byteorder == "little":
        table.byteswap()  # MP4 fields are big-endian
    track.duration += sum(table[::fields])  # the duration is each entry's first field


def _attach_runs(layout: Layout, runs: dict[int, _Runs], default_durations: dict[int, int]) -> None:
    """Give each track what its fragments declare. FFmpeg gives a fragment to the first
    track with its track_ID (libavformat/mov.c, mov_read_trun)."""
    by_id: dict[int, Track] = {}
    for track in layout.tracks:
        by_id.setdefault(track.track_id, track)
    for track_id, declared in runs.items():
        owner = by_id.get(track_id)
        if owner is None:
            layout.unlisted_fragment_samples += declared.samples
            continue
        owner.fragment_samples += declared.samples
        owner.fragment_duration += declared.duration + (
            declared.samples_of_track_default * default_durations.get(track_id, 0)
        )
