"""A small, bounded reader of an MP4/MOV file's box tree: what the index declares, not decoded.

FFmpeg builds an entry per declared sample when it opens a file, so a few bytes of index can
cost gigabytes. Reading the declarations first (ISO/IEC 14496-12 §4.2 box structure, §8 boxes;
QuickTime File Format for the same atoms) lets the prober refuse such files before any
decoder runs. Every read is bounded: tree depth, number of boxes, and the size of the one box
read whole (``moov``); a box whose size runs past its parent is a damaged file.
"""

from __future__ import annotations

import struct
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
    handler: bytes = b""  # b"vide", b"soun", …
    codec: bytes = b""  # first sample entry's type, e.g. b"avc1"
    width: int = 0  # coded size from the visual sample entry
    height: int = 0
    timescale: int = 0
    duration: int = 0  # mdhd, in timescale units
    samples: int = 0  # the largest count any table (stsz, stz2, stts, ctts) declares
    stts_duration: int = 0  # the sum of the declared sample durations

    @property
    def seconds(self) -> float | None:
        return self.duration / self.timescale if self.timescale and self.duration else None

    @property
    def sample_seconds(self) -> float | None:
        return self.stts_duration / self.timescale if self.timescale else None


@dataclass
class Layout:
    tracks: list[Track] = field(default_factory=list)
    fragment_samples: int = 0  # declared by trun boxes of fragmented files


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
    def head_at(offset: int) -> bytes:
        file.seek(offset)
        return file.read(16)

    for kind, start, end in _each_box(head_at, 0, size, budget):
        if kind in (b"moov", b"moof"):
            if end - start > MAX_INDEX_BYTES:
                raise LayoutError("video_too_complex")
            file.seek(start)
            payload = file.read(end - start)
            if kind == b"moov":
                found_moov = True
                _read_moov(payload, layout, budget)
            else:
                layout.fragment_samples += _count_fragment(payload, budget)
    if not found_moov:
        raise LayoutError("video_unreadable")
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


def _read_moov(data: bytes, layout: Layout, budget: _Budget) -> None:
    for kind, start, end in _children(data, 0, len(data), budget):
        if kind == b"trak":
            track = Track()
            _read_track(data, start, end, track, budget, depth=1)
            layout.tracks.append(track)


def _read_track(
    data: bytes, start: int, end: int, track: Track, budget: _Budget, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise LayoutError("video_too_complex")
    for kind, body, stop in _children(data, start, end, budget):
        if kind in _CONTAINERS:
            _read_track(data, body, stop, track, budget, depth + 1)
            continue
        payload = data[body:stop]
        try:
            _read_leaf(kind, payload, track)
        except (struct.error, IndexError) as exc:  # a box shorter than its fields
            raise LayoutError("video_unreadable") from exc


def _read_leaf(kind: bytes, payload: bytes, track: Track) -> None:
    if kind == b"hdlr" and not track.handler:
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


def _count_fragment(data: bytes, budget: _Budget) -> int:
    """Samples declared by the trun boxes of one moof (14496-12 §8.8.8)."""
    return sum(
        _count_traf(data, start, end, budget)
        for kind, start, end in _children(data, 0, len(data), budget)
        if kind == b"traf"
    )


def _count_traf(data: bytes, start: int, end: int, budget: _Budget) -> int:
    total = 0
    for kind, body, _stop in _children(data, start, end, budget):
        if kind == b"trun":
            if body + 8 > end:
                raise LayoutError("video_unreadable")
            (count,) = struct.unpack_from(">I", data, body + 4)
            total += count
    return total
