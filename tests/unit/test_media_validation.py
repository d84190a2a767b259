"""Pure media-intake rules: sniffing crafted headers, refusal messages, billing clamps."""

from __future__ import annotations

import struct
import subprocess
import sys
from ipaddress import ip_address

import pytest
from pydantic import ValidationError
from yarl import URL

from bot.evolink.spec import MIN_CLIP_SECONDS, MODEL_SPECS, EditModel, ModelSpec
from bot.i18n import N_
from bot.media.errors import MB, MediaRejected, format_limit_mb, format_mb, format_seconds
from bot.media.info import ImageInfo, VideoInfo
from bot.media.sniff import SNIFF_BYTES, MediaKind, sniff_kind
from bot.media.urlpolicy import UrlPolicy, is_public_address, require_https
from bot.media.validation import (
    ClipRules,
    ImageRules,
    check_image,
    check_image_count,
    check_image_kind,
    check_video,
    check_video_kind,
)

STANDARD_SPEC = MODEL_SPECS[EditModel.STANDARD]
FAST_SPEC = MODEL_SPECS[EditModel.FAST]
STANDARD = ClipRules.for_model(STANDARD_SPEC)
FAST = ClipRules.for_model(FAST_SPEC)
IMAGES = ImageRules.for_model(STANDARD_SPEC)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\2\0" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\0\0\0\x08free"


def ebml(doctype: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84" + doctype + b"\x42\x87\x81\x04"


def video(**changes: object) -> VideoInfo:
    base: dict[str, object] = {
        "kind": MediaKind.MP4,
        "duration_s": 5.0,
        "width": 1280,
        "height": 720,
        "fps": 30.0,
        "has_audio": True,
        "size_bytes": 5 * MB,
    }
    return VideoInfo.model_validate(base | changes)


def image(**changes: object) -> ImageInfo:
    base: dict[str, object] = {
        "kind": MediaKind.PNG,
        "width": 1024,
        "height": 768,
        "size_bytes": 2 * MB,
    }
    return ImageInfo.model_validate(base | changes)


def rejection(fn: object, *args: object) -> MediaRejected:
    assert callable(fn)
    with pytest.raises(MediaRejected) as caught:
        fn(*args)
    return caught.value


# --- sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), MediaKind.MP4),
        (ftyp(b"mp42", b"mp42", b"isom"), MediaKind.MP4),
        (ftyp(b"M4V ", b"M4V ", b"M4A ", b"mp42"), MediaKind.MP4),
        (ftyp(b"3gp4", b"3gp4", b"isom"), MediaKind.MP4),
        (ftyp(b"qt  ", b"qt  "), MediaKind.MOV),
        (b"\0\0\0\x08wide\0\0\0\0mdat", MediaKind.MOV),  # pre-ftyp QuickTime
        (ftyp(b"heic", b"mif1", b"heic"), MediaKind.HEIC),
        (ftyp(b"mif1", b"mif1", b"heic"), MediaKind.HEIC),
        (ftyp(b"mif1", b"mif1", b"miaf"), MediaKind.HEIC),
        (ftyp(b"avif", b"avif", b"mif1", b"miaf"), MediaKind.AVIF),
        (ftyp(b"mif1", b"mif1", b"avif"), MediaKind.AVIF),
        (ftyp(b"crx ", b"crx "), MediaKind.UNKNOWN),  # Canon raw: ISO-BMFF, not ours
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", MediaKind.JPEG),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", MediaKind.PNG),
        (b"RIFF\x24\0\0\0WEBPVP8 ", MediaKind.WEBP),
        (b"GIF89a\x01\0\x01\0", MediaKind.GIF),
        (b"GIF87a\x01\0\x01\0", MediaKind.GIF),
        (ebml(b"webm"), MediaKind.WEBM),
        (ebml(b"matroska"), MediaKind.MKV),
        (b"RIFF\x24\0\0\0AVI LIST", MediaKind.AVI),
        (b"RIFF\x24\0\0\0WAVEfmt ", MediaKind.UNKNOWN),
        (b"BM\x36\0\x0c\0\0\0\0\0\x36\0\0\0", MediaKind.BMP),
        (b"BMW drivers manual.txt", MediaKind.UNKNOWN),  # "BM" alone is not a bitmap
        (b"%PDF-1.7\n", MediaKind.PDF),
        (b"PK\x03\x04\x14\0", MediaKind.ZIP),
        (b"", MediaKind.UNKNOWN),
        (b"\0\0\0", MediaKind.UNKNOWN),
        (b"<!DOCTYPE html><html>", MediaKind.UNKNOWN),
    ],
)
def test_sniff_kind_uses_magic_bytes(head: bytes, kind: MediaKind) -> None:
    assert sniff_kind(head) is kind


def test_sniff_reads_long_brand_lists_within_the_sniff_window() -> None:
    head = ftyp(b"XXXX", *[b"zzzz"] * 40, b"heic")
    assert len(head) < SNIFF_BYTES
    assert sniff_kind(head) is MediaKind.HEIC


def test_sniff_ignores_brands_beyond_the_declared_box() -> None:
    # Bytes after the ftyp box are other boxes, not brands.
    head = ftyp(b"XXXX") + b"qt  " * 4
    assert sniff_kind(head) is MediaKind.UNKNOWN


@pytest.mark.parametrize(
    ("kind", "extension", "mime"),
    [
        (MediaKind.MP4, ".mp4", "video/mp4"),
        (MediaKind.MOV, ".mov", "video/quicktime"),
        (MediaKind.JPEG, ".jpg", "image/jpeg"),
        (MediaKind.PNG, ".png", "image/png"),
        (MediaKind.WEBP, ".webp", "image/webp"),
        (MediaKind.GIF, ".gif", "image/gif"),
    ],
)
def test_supported_kinds_have_extension_and_mime(
    kind: MediaKind, extension: str, mime: str
) -> None:
    assert (kind.extension, kind.mime_type) == (extension, mime)


def test_every_kind_has_a_label() -> None:
    assert all(kind.label and kind.extension and kind.mime_type for kind in MediaKind)


# --- clip rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MediaKind.MP4, MediaKind.MOV])
def test_mp4_and_mov_clips_pass(kind: MediaKind) -> None:
    check_video_kind(kind)
    check_video(video(kind=kind), STANDARD)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (MediaKind.GIF, "That file is a GIF image, not a video: attach an .mp4 or .mov clip"),
        (MediaKind.WEBM, "That file is a WebM video; attach an .mp4 or .mov clip"),
        (MediaKind.MKV, "That file is an MKV (Matroska) video; attach an .mp4 or .mov clip"),
        (MediaKind.AVI, "That file is an AVI video; attach an .mp4 or .mov clip"),
        (MediaKind.PDF, "That file is a PDF document, not a video: attach an .mp4 or .mov clip"),
        (MediaKind.UNKNOWN, "That file is not a video we can read: attach an .mp4 or .mov clip"),
    ],
)
def test_wrong_video_kinds_are_named(kind: MediaKind, reason: str) -> None:
    error = rejection(check_video_kind, kind)
    assert (error.reason, error.code) == (reason, "video_unsupported_type")


def test_check_video_also_checks_the_kind() -> None:
    assert rejection(check_video, video(kind=MediaKind.WEBM), STANDARD).code == (
        "video_unsupported_type"
    )


@pytest.mark.parametrize("duration", [1.0, 1.8, 2.99, 3.0, 10.0, 10.051, 41.2, 600.0])
def test_any_length_from_the_floor_up_is_accepted(duration: float) -> None:
    """§6: the provider bills a clip outside the model's range clamped, so it is not refused
    here; `ModelSpec.billed_seconds` bills it (see below)."""
    check_video(video(duration_s=duration), STANDARD)
    check_video(video(duration_s=duration), FAST)


def test_a_clip_under_the_floor_is_refused() -> None:
    assert MIN_CLIP_SECONDS == 1.0 and STANDARD.min_s == FAST.min_s == MIN_CLIP_SECONDS
    error = rejection(check_video, video(duration_s=0.96), STANDARD)
    assert (error.code, error.reason) == (
        "video_too_short",
        "The clip is 0.9 s long; clips must be at least 1 s long. "
        "Use a longer clip and try again.",
    )


def test_oversized_clip() -> None:
    error = rejection(check_video, video(size_bytes=140_200_000), STANDARD)
    assert (error.reason, error.code) == (
        "The clip is 140.2 MB; the limit is 100 MB",
        "video_too_large",
    )
    check_video(video(size_bytes=100 * MB), STANDARD)
    assert rejection(check_video, video(size_bytes=100 * MB + 1), STANDARD).reason == (
        "The clip is 100.1 MB; the limit is 100 MB"
    )


def test_resolution_is_left_to_the_provider_except_absurd_sizes() -> None:
    for width, height in [(64, 64), (480, 270), (3840, 2160), (4096, 2160)]:
        check_video(video(width=width, height=height), STANDARD)
    small = rejection(check_video, video(width=32, height=200), STANDARD)
    assert (small.reason, small.code) == (
        "The clip is 32×200 px; clips must be at least 64 px on each side",
        "video_too_small",
    )
    big = rejection(check_video, video(width=7680, height=4320), STANDARD)
    assert big.reason == "The clip is 7680×4320 px; clips can be at most 4096 px on each side"


def test_clip_rules_refuse_inverted_ranges() -> None:
    with pytest.raises(ValidationError):
        ClipRules(min_s=1, max_bytes=MB, min_side=500, max_side=100)
    assert STANDARD.max_bytes == 100_000_000


# --- image rules --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MediaKind.JPEG, MediaKind.PNG, MediaKind.WEBP])
def test_supported_images_pass(kind: MediaKind) -> None:
    check_image(image(kind=kind), IMAGES, 1)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (MediaKind.HEIC, "Reference image 2 is a HEIC image; use JPEG, PNG or WebP"),
        (MediaKind.GIF, "Reference image 2 is a GIF image; use JPEG, PNG or WebP"),
        (MediaKind.AVIF, "Reference image 2 is an AVIF image; use JPEG, PNG or WebP"),
        (MediaKind.MP4, "Reference image 2 is an MP4 video, not an image; use JPEG, PNG or WebP"),
        (MediaKind.UNKNOWN, "Reference image 2 is not an image we can read; use JPEG, PNG or WebP"),
    ],
)
def test_wrong_image_kinds_are_named(kind: MediaKind, reason: str) -> None:
    error = rejection(check_image_kind, kind, 2)
    assert (error.reason, error.code) == (reason, "image_unsupported_type")


def test_oversized_image() -> None:
    error = rejection(check_image, image(size_bytes=14_100_000), IMAGES, 3)
    assert (error.reason, error.code) == (
        "Reference image 3 is 14.1 MB; the limit is 10 MB",
        "image_too_large",
    )
    check_image(image(size_bytes=10 * MB), IMAGES, 3)


def test_small_image() -> None:
    error = rejection(check_image, image(width=200, height=150), IMAGES, 1)
    assert (error.reason, error.code) == (
        "Reference image 1 is 200×150 px; images must be at least 300 px on each side",
        "image_too_small",
    )
    check_image(image(width=300, height=300), IMAGES, 1)


@pytest.mark.parametrize(("width", "height"), [(750, 300), (300, 750), (1000, 1000)])
def test_aspect_ratio_limits_are_inclusive(width: int, height: int) -> None:
    check_image(image(width=width, height=height), IMAGES, 1)


@pytest.mark.parametrize(("width", "height"), [(751, 300), (300, 751), (4000, 400)])
def test_extreme_aspect_ratios_are_refused(width: int, height: int) -> None:
    error = rejection(check_image, image(width=width, height=height), IMAGES, 4)
    assert error.code == "image_bad_aspect"
    assert error.reason == (
        f"Reference image 4 is {width}×{height} px; "
        "its shape must be between 1:2.5 (tall) and 2.5:1 (wide)"
    )


def test_image_count() -> None:
    check_image_count(4, IMAGES)
    error = rejection(check_image_count, 5, IMAGES)
    assert (error.reason, error.code) == (
        "You attached 5 reference images; the limit is 4 images",
        "too_many_images",
    )


# --- formatting and billing ---------------------------------------------------------------


def test_sizes_use_decimal_megabytes() -> None:
    assert format_mb(140_249_999) == "140.2 MB"
    assert format_mb(140_200_001, round_up=True) == "140.3 MB"
    assert format_limit_mb(100 * MB) == "100 MB"
    assert format_limit_mb(2_500_000) == "2.5 MB"
    assert format_seconds(41.24) == "41.2 s"


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (0.5, 3),
        (1.8, 3),
        (3.0, 3),
        (3.01, 4),
        (3.0005, 4),  # any part of a second is billed (§7 "rounded up")
        (3.0000004, 3),  # under a microsecond: float noise, not a second
        (5.0000000001, 5),  # float noise from timestamps is not a second
        (7.5, 8),
        (10.0, 10),
        (10.04, 10),
        (41.2, 10),
    ],
)
def test_billed_seconds_standard(duration: float, expected: int) -> None:
    assert STANDARD_SPEC.billed_seconds(duration) == expected


@pytest.mark.parametrize(("duration", "expected"), [(2.0, 6), (6.2, 7), (19.5, 20), (25.0, 20)])
def test_billed_seconds_fast(duration: float, expected: int) -> None:
    assert FAST_SPEC.billed_seconds(duration) == expected


@pytest.mark.parametrize("duration", [-1.0, float("nan"), float("inf")])
def test_billed_seconds_rejects_nonsense_durations(duration: float) -> None:
    with pytest.raises(ValueError):
        STANDARD_SPEC.billed_seconds(duration)


@pytest.mark.parametrize(("low", "high"), [(10, 3), (0, 3)])
def test_model_specs_refuse_nonsense_billing_ranges(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        ModelSpec("broken", low, high, 1.0)


def test_media_rejected_carries_reason_and_code() -> None:
    error = MediaRejected(N_("The clip has no video track"), code="video_no_track")
    assert str(error) == error.reason == "The clip has no video track"
    assert error.code == "video_no_track"
    assert error.http_status is None


# --- URL policy (the parts that need no network) ------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(ip_address(address))


@pytest.mark.parametrize(
    ("policy", "url", "code"),
    [
        (UrlPolicy(), "http://example.com/a.mp4", "url_insecure"),
        (UrlPolicy(), "ftp://example.com/a.mp4", "url_insecure"),
        (UrlPolicy(), "file:///etc/passwd", "url_insecure"),
        (UrlPolicy(allow_http=True), "gopher://example.com/", "url_insecure"),
        (UrlPolicy(), "https:///nohost", "url_invalid"),
    ],
)
def test_url_policy_refuses_schemes(policy: UrlPolicy, url: str, code: str) -> None:
    assert rejection(policy.check_url, URL(url)).code == code


def test_insecure_message() -> None:
    assert rejection(UrlPolicy().check_url, URL("http://x.test/")).reason == (
        "Links must use https://"
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [("http://x.test/clip.mp4", "url_insecure"), ("ftp://x.test/a", "url_insecure"),
     ("https://", "url_invalid"), ("https://[bad", "url_invalid")],
)
def test_require_https_is_the_strict_policys_link_rule(url: str, code: str) -> None:
    error = rejection(require_https, url)
    assert error.code == code
    assert error.reason == rejection(UrlPolicy().check_url, URL(url.replace("[bad", ""))).reason
    require_https(" HTTPS://cdn.example/clip.mp4 ")


def test_media_package_never_imports_discord() -> None:
    code = (
        "import sys, bot.media.fetch, bot.media.probe, bot.media.validation, bot.evolink.spec;"
        "sys.exit('discord' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
