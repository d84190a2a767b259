"""Identify a file by its first bytes.

The filename and the uploader's Content-Type are ignored on purpose: both are chosen by the
user, and the provider (and our own decoders) will see the bytes, not the name.
"""

from __future__ import annotations

import enum
import struct
from pathlib import Path
from typing import Final, NamedTuple

from bot.i18n import N_, Text

# Enough for every signature below, including an ``ftyp`` box with a long brand list.
SNIFF_BYTES: Final = 512


class _KindInfo(NamedTuple):
    label: Text  # "a WebM video": article + name + noun, ready for a sentence
    extension: str
    mime_type: str


class MediaKind(enum.Enum):
    MP4 = "mp4"
    MOV = "mov"
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    # Recognised so that users get a precise refusal, but never sent to the provider.
    WEBM = "webm"
    MKV = "mkv"
    AVI = "avi"
    HEIC = "heic"
    AVIF = "avif"
    BMP = "bmp"
    PDF = "pdf"
    ZIP = "zip"
    UNKNOWN = "unknown"

    @property
    def label(self) -> Text:
        """Name with article and noun, e.g. ``"a HEIC image"``, ``"an MP4 video"``."""
        return _INFO[self].label

    @property
    def extension(self) -> str:
        """File extension with the dot, e.g. ``".mp4"`` (``".bin"`` for UNKNOWN)."""
        return _INFO[self].extension

    @property
    def mime_type(self) -> str:
        return _INFO[self].mime_type

    @property
    def is_video(self) -> bool:
        return self in _VIDEO_KINDS

    @property
    def is_image(self) -> bool:
        return self in _IMAGE_KINDS


_INFO: Final[dict[MediaKind, _KindInfo]] = {
    MediaKind.MP4: _KindInfo(N_("an MP4 video"), ".mp4", "video/mp4"),
    MediaKind.MOV: _KindInfo(N_("a QuickTime (.mov) video"), ".mov", "video/quicktime"),
    MediaKind.JPEG: _KindInfo(N_("a JPEG image"), ".jpg", "image/jpeg"),
    MediaKind.PNG: _KindInfo(N_("a PNG image"), ".png", "image/png"),
    MediaKind.WEBP: _KindInfo(N_("a WebP image"), ".webp", "image/webp"),
    MediaKind.GIF: _KindInfo(N_("a GIF image"), ".gif", "image/gif"),
    MediaKind.WEBM: _KindInfo(N_("a WebM video"), ".webm", "video/webm"),
    MediaKind.MKV: _KindInfo(N_("an MKV (Matroska) video"), ".mkv", "video/x-matroska"),
    MediaKind.AVI: _KindInfo(N_("an AVI video"), ".avi", "video/x-msvideo"),
    MediaKind.HEIC: _KindInfo(N_("a HEIC image"), ".heic", "image/heic"),
    MediaKind.AVIF: _KindInfo(N_("an AVIF image"), ".avif", "image/avif"),
    MediaKind.BMP: _KindInfo(N_("a BMP image"), ".bmp", "image/bmp"),
    MediaKind.PDF: _KindInfo(N_("a PDF document"), ".pdf", "application/pdf"),
    MediaKind.ZIP: _KindInfo(N_("a ZIP archive"), ".zip", "application/zip"),
    MediaKind.UNKNOWN: _KindInfo(
        N_("a file type we don't recognise"), ".bin", "application/octet-stream"
    ),
}
_VIDEO_KINDS: Final = frozenset(
    {MediaKind.MP4, MediaKind.MOV, MediaKind.WEBM, MediaKind.MKV, MediaKind.AVI}
)
_IMAGE_KINDS: Final = frozenset(
    {
        MediaKind.JPEG,
        MediaKind.PNG,
        MediaKind.WEBP,
        MediaKind.GIF,
        MediaKind.HEIC,
        MediaKind.AVIF,
        MediaKind.BMP,
    }
)

# ISO-BMFF brands (major or compatible) → kind. 3GP and friends are the MP4 container.
# fmt: off
_BRAND_KINDS: Final[dict[bytes, MediaKind]] = {
    b"qt  ": MediaKind.MOV,
    **dict.fromkeys(
        [
            b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
            b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"M4A ", b"f4v ", b"MSNV",
            b"dash", b"mmp4", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"XAVC", b"CAEP",
        ],
        MediaKind.MP4,
    ),
    **dict.fromkeys(
        [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"], MediaKind.HEIC
    ),
    **dict.fromkeys([b"avif", b"avis"], MediaKind.AVIF),
}
# fmt: on
# Generic HEIF brands: they say "still image(s) in HEIF" without naming the codec.
_GENERIC_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1", b"miaf"})
# Files from old QuickTime versions start with a top-level atom instead of ``ftyp``.
_LEGACY_QT_ATOMS: Final = frozenset({b"moov", b"mdat", b"wide", b"pnot"})


def sniff_kind(head: bytes) -> MediaKind:
    """Classify a file from its first bytes (pass at least :data:`SNIFF_BYTES` when you can)."""
    if head.startswith(b"\xff\xd8\xff"):
        return MediaKind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaKind.PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return MediaKind.GIF
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": MediaKind.WEBP, b"AVI ": MediaKind.AVI}.get(head[8:12], MediaKind.UNKNOWN)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: the DocType element says which; browsers' WebM and Matroska share the magic.
        return MediaKind.WEBM if b"webm" in head[:64] else MediaKind.MKV
    if head.startswith(b"%PDF-"):
        return MediaKind.PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return MediaKind.ZIP
    # "BM" alone is too weak (text files start with it); the two reserved words must be zero.
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return MediaKind.BMP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if len(head) >= 8 and head[4:8] in _LEGACY_QT_ATOMS:
        return MediaKind.MOV
    return MediaKind.UNKNOWN


def _sniff_ftyp(head: bytes) -> MediaKind:
    """ISO-BMFF ``ftyp`` box: size, "ftyp", major brand, minor version, compatible brands."""
    (box_size,) = struct.unpack(">I", head[:4])
    end = min(len(head), box_size) if box_size >= 16 else len(head)
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    # First specific brand wins, major brand first: HEIF files often carry the generic "mif1"
    # as major brand and name "heic"/"avif" only in the compatible list.
    for brand in brands:
        if (kind := _BRAND_KINDS.get(brand)) is not None:
            return kind
    if _GENERIC_HEIF_BRANDS.intersection(brands):
        return MediaKind.HEIC
    return MediaKind.UNKNOWN


def sniff_file_sync(path: Path) -> MediaKind:
    """:func:`sniff_kind` on a file's first bytes. Blocking: callers run it on the bot's
    file-work threads or in a probe worker, never on the event loop or its default pool."""
    with path.open("rb") as fh:
        return sniff_kind(fh.read(SNIFF_BYTES))
