"""Hostile media made at test time: files built to hurt a prober, never committed as binaries.

Each generator returns the file's bytes. The MP4s are either written box by box (ISO/IEC
14496-12: a box is a 32-bit size, a four-character type and a payload; a "full box" adds a
version byte and 24 bits of flags) or real PyAV clips whose header fields are patched to lie.
Other tests (the out-of-process intake test) import these names; keep their signatures.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import cache
from typing import Literal

import av

from sandbox.media_samples import make_mp4_bytes

__all__ = [
    "fragmented_clip",
    "huge_dimensions_clip",
    "lying_duration_clip",
    "pixel_bomb_png",
    "polyglot_clip",
    "sample_count_bomb",
    "tiny_packet_clip",
    "truncated_clip",
    "unlisted_codec_clip",
]

_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_FTYP_PAYLOAD = b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *payload)


def _plausible_avcc() -> bytes:
    """A minimal avcC (14496-15 §5.3.3) with baseline-profile SPS/PPS bytes that only need to
    look plausible: the structural checks refuse these files before any decoder sees them."""
    sps, pps = b"\x67\x42\xc0\x1e\xd9\x00\xa0\x47\xfe\xc8", b"\x68\xce\x3c\x80"
    return box(
        b"avcC",
        bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
        b"\x01", struct.pack(">H", len(pps)), pps,
    )


@cache
def real_keyframe() -> tuple[bytes, bytes]:
    """The avcC box and first (key) frame of a real 16×16 H.264 clip made by PyAV."""
    data = make_mp4_bytes(0.1, width=16, height=16, fps=10)
    at = data.index(b"avcC") - 4
    (size,) = struct.unpack_from(">I", data, at)
    with av.open(io.BytesIO(data)) as container:
        first = next(packet for packet in container.demux(video=0) if packet.size)
        return data[at : at + size], bytes(first)


def _avc1_entry(width: int, height: int, avcc: bytes) -> bytes:
    """A visual sample entry (14496-12 §12.1.3) holding `avcc`."""
    return box(
        b"avc1",
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16), struct.pack(">HH", width, height),
        struct.pack(">IIIH", 0x480000, 0x480000, 0, 1),  # 72 dpi, reserved, frame_count
        bytes(32), struct.pack(">Hh", 0x18, -1),  # compressor name, depth, pre_defined
        avcc,
    )


def _video_moov(
    tables: bytes, *, width: int, height: int, timescale: int, duration: int, avcc: bytes,
    extensions: bytes = b"",
) -> bytes:
    """moov holding one H.264 video track (track_ID 1) with the sample `tables` after stsd;
    `extensions` (an mvex) follow the track."""
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1_entry(width, height, avcc)),
        tables,
    )
    minf = box(
        b"minf",
        full_box(b"vmhd", 0, 1, bytes(8)),
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = box(
        b"mdia",
        full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0)),
        full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0"),
        minf,
    )
    movie_duration = duration * 1000 // timescale
    tkhd = full_box(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, movie_duration), bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0), _IDENTITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mvhd = full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH", 0, 0, 1000, movie_duration, 0x10000, 0x100), bytes(10),
        _IDENTITY_MATRIX, bytes(24), struct.pack(">I", 2),
    )
    return box(b"moov", mvhd, box(b"trak", tkhd, mdia), extensions)


def synthetic_mp4(
    *, samples: int, sample_size: int, timescale: int, delta: int, width: int = 64,
    height: int = 64, payload: bytes = b"", decodable: bool = False, cut_at: int | None = None,
) -> bytes:
    """ftyp + moov (one H.264 video track, one chunk) + mdat.

    Every sample is `sample_size` bytes of `payload`, or with `decodable` the first is a real
    key frame (so a decoder gets its first picture) and the rest are `sample_size` zeros.
    With `cut_at` (and `decodable`), sample `cut_at` is listed as a megabyte of which the file
    holds only `sample_size` bytes, and the samples after it lie past the file's end: a lost
    tail that the index and box tree do not show, only reading that packet does.
    """
    avcc, sizes = _plausible_avcc(), struct.pack(">II", sample_size, samples)
    if decodable:
        avcc, first = real_keyframe()
        table = [len(first)] + [sample_size] * (samples - 1)
        present = samples
        if cut_at is not None:
            table[cut_at], present = 1024 * 1024, cut_at + 1
        payload = first + bytes(sample_size * (present - 1))
        sizes = struct.pack(f">II{samples}I", 0, samples, *table)

    def moov(chunk_offset: int) -> bytes:
        tables = (
            full_box(b"stts", 0, 0, struct.pack(">III", 1, samples, delta))
            + full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, samples, 1))
            + full_box(b"stsz", 0, 0, sizes)
            + full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset))
        )
        return _video_moov(
            tables, width=width, height=height, timescale=timescale,
            duration=samples * delta, avcc=avcc,
        )

    ftyp = box(b"ftyp", _FTYP_PAYLOAD)
    # The chunk offset depends on moov's length, which does not depend on the offset's value.
    offset = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(offset) + box(b"mdat", payload)


# tfhd flags (14496-12 §8.8.7): a default sample duration follows the track_ID; data offsets
# count from the moof.
_TFHD_DEFAULT_DURATION, _TFHD_BASE_IS_MOOF = 0x08, 0x020000
_TRUN_SAMPLE_DURATION = 0x100  # trun flags (§8.8.8): each sample lists its duration

DurationBox = Literal["tfhd", "trex", "trun"]


def fragmented_clip(
    samples: int, *, delta: int = 0, delta_in: DurationBox = "tfhd", track_id: int = 1
) -> bytes:
    """A fragmented MP4 (14496-12 §8.8): moov lists one H.264 track (track_ID 1, timescale
    1000) with an empty index, and one moof declares `samples` empty samples of `track_id`,
    each lasting `delta` ticks as declared in `delta_in`: the fragment header's default,
    the track's default in moov's mvex, or per sample in the run.

    A few hundred bytes whatever `samples` is: FFmpeg indexes every declared sample at open.
    """
    empty_tables = (
        full_box(b"stts", 0, 0, struct.pack(">I", 0))
        + full_box(b"stsc", 0, 0, struct.pack(">I", 0))
        + full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0))
        + full_box(b"stco", 0, 0, struct.pack(">I", 0))
    )
    # trex: track_ID, sample description index, default duration, size and flags.
    trex_delta = delta if delta_in == "trex" else 0
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, trex_delta, 0, 0))
    moov = _video_moov(
        empty_tables, width=64, height=64, timescale=1000, duration=0,
        avcc=_plausible_avcc(), extensions=box(b"mvex", trex),
    )
    if delta_in == "tfhd":
        tfhd = full_box(
            b"tfhd", 0, _TFHD_BASE_IS_MOOF | _TFHD_DEFAULT_DURATION,
            struct.pack(">II", track_id, delta),
        )
    else:
        tfhd = full_box(b"tfhd", 0, _TFHD_BASE_IS_MOOF, struct.pack(">I", track_id))
    if delta_in == "trun":
        durations = struct.pack(f">{samples}I", *[delta] * samples)
        trun = full_box(b"trun", 0, _TRUN_SAMPLE_DURATION, struct.pack(">I", samples), durations)
    else:
        trun = full_box(b"trun", 0, 0, struct.pack(">I", samples))
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)), box(b"traf", tfhd, trun))
    return box(b"ftyp", _FTYP_PAYLOAD) + moov + moof + box(b"mdat")


def sample_count_bomb(samples: int = 60_000_000) -> bytes:
    """A few KB declaring `samples` one-byte samples: FFmpeg indexes every one at open."""
    return synthetic_mp4(
        samples=samples, sample_size=1, timescale=max(1, samples // 5), delta=1,
        payload=bytes(64),
    )


def tiny_packet_clip(packets_per_second: int = 1000, seconds: float = 10) -> bytes:
    """A real key frame, then 8-byte packets, all present in mdat: cheap to send, costly to
    demux (FFmpeg reads each packet separately)."""
    samples = max(2, round(packets_per_second * seconds))
    return synthetic_mp4(
        samples=samples, sample_size=8, timescale=packets_per_second, delta=1, width=16,
        height=16, decodable=True,
    )


def _patch(data: bytearray, box_type: bytes, field_offset: int, fmt: str, *values: int) -> None:
    """Overwrite a field of the first `box_type` box in moov; `field_offset` counts from its
    type (so "avc1" is not taken from ftyp's brand list)."""
    at = data.index(box_type, data.index(b"moov")) + field_offset
    struct.pack_into(fmt, data, at, *values)


def huge_dimensions_clip() -> bytes:
    """A real clip whose track header and sample entry claim 60000×60000 pixels."""
    data = bytearray(make_mp4_bytes(1, fps=10))
    # avc1: type(4) reserved(6) data_reference_index(2) pre_defined/reserved(16) width height
    _patch(data, b"avc1", 4 + 24, ">HH", 60000, 60000)
    # tkhd v0: type(4) version/flags(4) + 72 bytes of times, ids, layer and matrix, then 16.16 size
    _patch(data, b"tkhd", 4 + 4 + 72, ">II", 60000 << 16, 60000 << 16)
    return bytes(data)


def unlisted_codec_clip(codec: bytes = b"rle ") -> bytes:
    """A real clip whose sample entry names another decoder (QuickTime Animation by default)."""
    data = bytearray(make_mp4_bytes(1, fps=10))
    entry = data.index(b"avc1", data.index(b"stsd"))
    data[entry : entry + 4] = codec
    return bytes(data)


def lying_duration_clip() -> bytes:
    """A real 1 s clip whose movie and media headers say it lasts 5 s."""
    data = bytearray(make_mp4_bytes(1, fps=10))
    for header in (b"mvhd", b"mdhd"):  # v0: type, version/flags, creation, modification
        (timescale,) = struct.unpack_from(">I", data, data.index(header, data.index(b"moov")) + 16)
        _patch(data, header, 4 + 4 + 12, ">I", 5 * timescale)
    return bytes(data)


def truncated_clip() -> bytes:
    """A real clip cut in half; PyAV writes the index (moov) last, so it is lost too."""
    whole = make_mp4_bytes(4, fps=10)
    return whole[: len(whole) // 2]


def polyglot_clip() -> bytes:
    """An MP4 signature (ftyp) followed by a ZIP archive holding a web page."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.html", "<html><script>alert(1)</script></html>")
    return box(b"ftyp", _FTYP_PAYLOAD) + archive.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def pixel_bomb_png(width: int = 60000, height: int = 60000, *, rgba: bool = False) -> bytes:
    """A PNG header declaring `width`×`height` pixels (8-bit grey, or RGBA: four times the
    memory once decoded), with a few rows of zeros."""
    channels, colour_type = (4, 6) if rgba else (1, 0)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    rows = zlib.compress(bytes((width * channels + 1) * 4), 9)  # filter byte + pixels, 4 rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
