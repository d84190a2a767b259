"""Hostile media, generated at test time (no binary fixtures).

Interim versions for the hostile corpus test; helper A's `probe-sandbox` branch provides the
canonical file with the same names, which replaces this one at merge.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
from PIL import Image

from sandbox.media_samples import make_mp4_bytes

_CLEAN_CLIP_S = 4.0


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version_flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version_flags), *parts)


def _declared_mp4(*, samples: int, width: int, height: int, timescale: int = 1000) -> bytes:
    """A tiny MP4 whose one video track *declares* `samples` samples of 1 byte each.

    ISO/IEC 14496-12: `stts` one run of `samples` deltas of 1, `stsc` one chunk holding them
    all, `stsz` a constant sample size with `sample_count` = `samples`, one `stco` offset.
    The bytes behind them are not there; a demuxer that indexes every declared sample
    allocates an entry per sample before it reads any.
    """
    duration = samples  # one tick per sample
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(
        b"mvhd", 0, struct.pack(">IIII", 0, 0, timescale, duration),
        struct.pack(">IH", 0x10000, 0x100), bytes(10), matrix, bytes(24), struct.pack(">I", 2),
    )
    tkhd = _full_box(
        b"tkhd", 3, struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8),
        struct.pack(">HHHH", 0, 0, 0, 0), matrix, struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1)))
    # avcC: version 1, High profile, 4-byte lengths, one tiny SPS and PPS (only parsed later).
    sps, pps = bytes.fromhex("6764000aacd9"), bytes.fromhex("68ebe3cb")
    avcc = _box(
        b"avcC", bytes([1, 0x64, 0, 0x0A, 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )
    avc1 = _box(
        b"avc1", bytes(6), struct.pack(">H", 1), bytes(16), struct.pack(">HH", width, height),
        struct.pack(">II", 0x480000, 0x480000), bytes(4), struct.pack(">H", 1), bytes(32),
        struct.pack(">Hh", 0x18, -1), avcc,
    )
    stsd = _full_box(b"stsd", 0, struct.pack(">I", 1), avc1)
    stts = _full_box(b"stts", 0, struct.pack(">III", 1, samples, 1))
    stsc = _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, samples, 1))
    stsz = _full_box(b"stsz", 0, struct.pack(">II", 1, samples))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    mdat_payload = bytes(64)

    def moov(chunk_offset: int) -> bytes:
        stco = _full_box(b"stco", 0, struct.pack(">II", 1, chunk_offset))
        stbl = _box(b"stbl", stsd, stts, stsc, stsz, stco)
        minf = _box(b"minf", vmhd, dinf, stbl)
        trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
        return _box(b"moov", mvhd, trak)

    head_size = len(ftyp) + len(moov(0))
    return ftyp + moov(head_size + 8) + _box(b"mdat", mdat_payload)


def sample_count_bomb(samples: int = 60_000_000) -> bytes:
    """A ~1 KB MP4 declaring `samples` video samples (60 M: ~2 GB of demuxer index)."""
    return _declared_mp4(samples=samples, width=640, height=360)


def huge_dimensions_clip() -> bytes:
    """An MP4 whose video track declares 65535×65535 pixels (a 17 GB picture per frame)."""
    return _declared_mp4(samples=96, width=65535, height=65535, timescale=24)


def truncated_clip() -> bytes:
    """A real clip cut off part-way: its index (written last) never arrives."""
    whole = make_mp4_bytes(_CLEAN_CLIP_S, 320, 240)
    return whole[: len(whole) * 3 // 5]


def lying_duration_clip() -> bytes:
    """A real 4 s clip whose headers (movie, track, media, edit list) claim half a second."""
    data = bytearray(make_mp4_bytes(_CLEAN_CLIP_S, 320, 240))
    movie_scale = struct.unpack_from(">I", data, data.find(b"mvhd") + 16)[0]
    media_scale = struct.unpack_from(">I", data, data.find(b"mdhd") + 16)[0]
    # Offsets from each (version 0) box's type to its duration field.
    for kind, offset, scale in (
        (b"mvhd", 20, movie_scale), (b"tkhd", 24, movie_scale),
        (b"elst", 12, movie_scale), (b"mdhd", 20, media_scale),
    ):
        struct.pack_into(">I", data, data.find(kind) + offset, scale // 2)
    return bytes(data)


def polyglot_clip() -> bytes:
    """A PNG signature and header chunk in front of a complete MP4 (a GIFAR-style polyglot)."""
    ihdr = struct.pack(">IIBBBBB", 320, 240, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + make_mp4_bytes(_CLEAN_CLIP_S, 320, 240)


def tiny_packet_clip(packets_per_second: int = 1000, seconds: float = 10) -> bytes:
    """`packets_per_second` × `seconds` one-picture H.264 packets (the same keyframe again)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=packets_per_second)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frame = av.VideoFrame.from_image(Image.new("RGB", (320, 240), (40, 90, 200)))  # type: ignore[no-untyped-call]
        frame.pts, frame.time_base = 0, Fraction(1, packets_per_second)
        [keyframe] = [p for p in (*stream.encode(frame), *stream.encode(None)) if p.size]
        payload = bytes(keyframe)
        for index in range(int(packets_per_second * seconds)):
            packet = av.Packet(payload)
            packet.stream = stream
            packet.time_base = Fraction(1, packets_per_second)
            packet.pts = index
            packet.duration = 1
            out.mux(packet)
    return buf.getvalue()


def pixel_bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A small PNG declaring `width`×`height` RGB pixels; only its first rows are there."""
    row = b"\0" + bytes(3 * width)  # filter byte + pixels
    body = zlib.compress(row * 4, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
