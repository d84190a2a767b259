"""Read duration, size and shape of uploaded media with PyAV and Pillow, off the event loop.

Probing decodes attacker-supplied bytes, so both probers pin the decoder to the format the
magic bytes announced (no format guessing, no playlists or external references), and treat any
decoder complaint as "this file is damaged" rather than letting exception text reach the user.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from bot.media.errors import MediaRejected
from bot.media.info import ImageInfo, VideoInfo
from bot.media.sniff import MediaKind, sniff_file_sync
from bot.media.validation import check_image_kind, check_video_kind

__all__ = ["ImageInfo", "VideoInfo", "probe_image", "probe_video"]

# A truncated upload whose index (moov) comes first still opens; its samples then stop early.
# Missing more than this much of the declared video means the file is incomplete.
_TRUNCATION_SLACK_S: Final = 0.5
# Decoding a whole image allocates width×height×4 bytes. 50 MP (e.g. 8660×5773) covers
# high-end phone photos that fit under the image size cap, and bounds memory per probe to ~200 MB.
MAX_IMAGE_PIXELS: Final = 50_000_000
_PILLOW_FORMATS: Final = {
    MediaKind.JPEG: "JPEG",
    MediaKind.PNG: "PNG",
    MediaKind.WEBP: "WEBP",
    MediaKind.GIF: "GIF",
}
_UNREADABLE_CLIP = (
    "The clip could not be read; it may be damaged or incomplete. "
    "Export it again as .mp4 and try again"
)


async def probe_video(path: Path) -> VideoInfo:
    """Facts about a clip; refuses non-MP4/MOV files, clips without video and damaged files."""
    return await asyncio.to_thread(_probe_video_sync, path)


async def probe_image(path: Path, *, index: int = 1) -> ImageInfo:
    """Facts about a still image; refuses animations, damage and format mismatches.

    ``index`` (1-based) only numbers the image in refusal messages.
    """
    return await asyncio.to_thread(_probe_image_sync, path, index)


def _probe_video_sync(path: Path) -> VideoInfo:
    kind = sniff_file_sync(path)
    check_video_kind(kind)
    size = path.stat().st_size
    try:
        # "mov" is FFmpeg's MP4/MOV demuxer; naming it stops format probing from picking, say,
        # the HLS or concat demuxers, which would open further files or URLs named in the data.
        with av.open(
            str(path),
            "r",
            format="mov",
            container_options={"protocol_whitelist": "file", "enable_drefs": "0"},
            metadata_errors="ignore",
        ) as container:
            return _read_video(container, kind, size)
    except (av.FFmpegError, OSError, ValueError, ZeroDivisionError) as exc:
        raise MediaRejected(_UNREADABLE_CLIP, code="video_unreadable") from exc


def _read_video(container: InputContainer, kind: MediaKind, size: int) -> VideoInfo:
    videos = [
        s
        for s in container.streams.video
        # Cover art in .m4a/.mov files shows up as a one-picture "video" stream.
        if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not videos:
        raise MediaRejected("The clip has no video track", code="video_no_track")
    video = videos[0]
    width, height = video.codec_context.width, video.codec_context.height
    time_base = video.time_base
    if not width or not height or time_base is None:
        raise MediaRejected(_UNREADABLE_CLIP, code="video_unreadable")
    rate = video.average_rate or video.guessed_rate
    fps = float(rate) if rate else None

    stream_s = float(video.duration * time_base) if video.duration else None
    if container.duration:
        duration = container.duration / av.time_base
    elif stream_s:
        duration = stream_s
    elif video.frames and fps:
        duration = video.frames / fps
    else:
        raise MediaRejected(_UNREADABLE_CLIP, code="video_unreadable")

    _check_samples(container, video, time_base, stream_s)
    return VideoInfo(
        kind=kind,
        duration_s=duration,
        width=width,
        height=height,
        fps=fps,
        has_audio=bool(container.streams.audio),
        size_bytes=size,
    )


def _check_samples(
    container: InputContainer, video: VideoStream, time_base: Fraction, stream_s: float | None
) -> None:
    """Demux every video packet (cheap: no decoding) and decode until the first picture.

    Opening only reads the index; this proves the samples are really there and decodable.
    """
    start = video.start_time or 0
    end_s = 0.0
    decoded = False
    for packet in container.demux(video):
        if packet.size == 0:  # end-of-stream marker
            continue
        if packet.is_corrupt:
            raise MediaRejected(_UNREADABLE_CLIP, code="video_unreadable")
        if packet.pts is not None:
            pts_end = packet.pts - start + (packet.duration or 0)
            end_s = max(end_s, float(pts_end * time_base))
        if not decoded:
            decoded = bool(video.codec_context.decode(packet))
    if not decoded:
        decoded = bool(video.codec_context.decode(None))  # drain frames held for reordering
    if not decoded:
        raise MediaRejected(_UNREADABLE_CLIP, code="video_unreadable")
    if stream_s is not None and end_s < stream_s - _TRUNCATION_SLACK_S:
        raise MediaRejected(_UNREADABLE_CLIP, code="video_truncated")


def _probe_image_sync(path: Path, index: int) -> ImageInfo:
    kind = sniff_file_sync(path)
    pillow_format = _PILLOW_FORMATS.get(kind)
    if pillow_format is None:
        check_image_kind(kind, index)  # raises the "use JPEG, PNG or WebP" refusal
        raise AssertionError(f"{kind} passed the image kind check but has no decoder")
    size = path.stat().st_size
    try:
        width, height = _decode_still(path, pillow_format, index)
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher, pixel cap
        raise _too_many_pixels(index, None) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # UnidentifiedImageError is an OSError
        raise MediaRejected(
            f"Reference image {index} could not be read; it may be damaged. "
            "Save it again as JPEG or PNG and try again",
            code="image_unreadable",
        ) from exc
    return ImageInfo(kind=kind, width=width, height=height, size_bytes=size)


def _decode_still(path: Path, pillow_format: str, index: int) -> tuple[int, int]:
    # Only the sniffed format's decoder may claim the file, so a PNG signature in front of
    # something else fails here instead of being handed to another plugin.
    with Image.open(path, formats=[pillow_format]) as image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _too_many_pixels(index, (width, height))
        if getattr(image, "is_animated", False):
            raise MediaRejected(
                f"Reference image {index} is animated; use a still JPEG, PNG or WebP image",
                code="image_animated",
            )
        image.verify()  # checksums and structure; leaves this Image object unusable
    with Image.open(path, formats=[pillow_format]) as image:
        image.load()  # full decode: catches truncated pixel data that verify() misses
        if image.format != pillow_format or image.size != (width, height):
            raise ValueError("decoder disagrees with the header")
    return width, height


def _too_many_pixels(index: int, size: tuple[int, int] | None) -> MediaRejected:
    what = f"is {size[0]}×{size[1]} px; that is" if size else "has"
    return MediaRejected(
        f"Reference image {index} {what} too many pixels to process. Scale it down and try again",
        code="image_too_many_pixels",
    )
