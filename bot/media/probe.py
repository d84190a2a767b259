"""Read duration, size and shape of uploaded media with PyAV and Pillow, in a worker process.

Probing decodes attacker-supplied bytes, so it runs only in the :class:`Prober`'s workers
(memory cap, timeout), a clip's index is checked for sanity before FFmpeg opens it
(:mod:`bot.media.precheck`), both probers pin the decoder to the format the magic bytes
announced (no format guessing, no playlists or external references), no more of a clip is
read than its model edits, and any decoder complaint means "this file is damaged" rather than
letting exception text reach the user.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Final

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from bot.i18n import N_
from bot.media.errors import MediaRejected, no_video_track, too_complex_clip, unreadable_clip
from bot.media.info import ImageInfo, VideoInfo
from bot.media.mp4layout import LayoutError, read_layout
from bot.media.precheck import SLACK_S, check_layout
from bot.media.prober import ProbeFailed, Prober
from bot.media.sniff import MediaKind, sniff_file_sync
from bot.media.validation import ClipRules, check_image_kind, check_video_kind

__all__ = ["ImageInfo", "VideoInfo", "probe_image", "probe_video"]

# Decoding a whole image allocates width×height×4 bytes. 50 MP (e.g. 8660×5773) covers
# high-end phone photos that fit under the image size cap, and bounds memory per probe to ~200 MB.
MAX_IMAGE_PIXELS: Final = 50_000_000
_PILLOW_FORMATS: Final = {
    MediaKind.JPEG: "JPEG",
    MediaKind.PNG: "PNG",
    MediaKind.WEBP: "WEBP",
    MediaKind.GIF: "GIF",
}


async def probe_video(
    prober: Prober, path: Path, rules: ClipRules, *, start_s: float = 0.0
) -> VideoInfo:
    """Facts about a clip; refuses non-MP4/MOV files, clips without video, damaged files and
    clips whose index or decoding would go past the prober's limits.

    Packets are read up to the end of the longest part the model edits from ``start_s``."""
    try:
        return await prober.run(_probe_video_sync, path, rules, start_s)
    except ProbeFailed as exc:
        raise too_complex_clip(rules.model_range_text) from exc


async def probe_image(prober: Prober, path: Path, *, index: int = 1) -> ImageInfo:
    """Facts about a still image; refuses animations, damage and format mismatches.

    ``index`` (1-based) only numbers the image in refusal messages.
    """
    try:
        return await prober.run(_probe_image_sync, path, index)
    except ProbeFailed as exc:
        raise MediaRejected(
            N_("Reference image {index} could not be checked within the bot's limits; "
               "save it again as JPEG or PNG and try again", index=index),
            code="image_too_complex",
        ) from exc


def _probe_video_sync(path: Path, rules: ClipRules, start_s: float) -> VideoInfo:
    kind = sniff_file_sync(path)
    check_video_kind(kind)
    size = path.stat().st_size
    try:
        with path.open("rb") as file:
            layout = read_layout(file, size)
    except LayoutError as exc:
        if exc.code == "video_too_complex":
            raise too_complex_clip(rules.model_range_text) from exc
        raise unreadable_clip(exc.code) from exc
    check_layout(layout, rules)
    try:
        with open_clip(path) as container:
            horizon_s = start_s + rules.model_max_s + SLACK_S
            return _read_video(container, kind, size, horizon_s)
    except MemoryError:
        raise  # av.error.MemoryError is an FFmpegError too; the worker must see it as memory
    except (av.FFmpegError, OSError, ValueError, ZeroDivisionError) as exc:
        raise unreadable_clip() from exc


def open_clip(path: Path) -> InputContainer:
    """Open a clip whose layout was checked, with FFmpeg's MP4/MOV demuxer alone.

    Naming "mov" stops format probing from picking, say, the HLS or concat demuxers, which
    would open further files or URLs named in the data."""
    return av.open(
        str(path),
        "r",
        format="mov",
        container_options={"protocol_whitelist": "file", "enable_drefs": "0"},
        metadata_errors="ignore",
    )


def video_stream_of(container: InputContainer) -> VideoStream:
    videos = [
        s
        for s in container.streams.video
        # Cover art in .m4a/.mov files shows up as a one-picture "video" stream.
        if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not videos:
        raise no_video_track()
    return videos[0]


def _read_video(
    container: InputContainer, kind: MediaKind, size: int, horizon_s: float
) -> VideoInfo:
    video = video_stream_of(container)
    width, height = video.codec_context.width, video.codec_context.height
    time_base = video.time_base
    if not width or not height or time_base is None:
        raise unreadable_clip()
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
        raise unreadable_clip()

    measured_s = _check_samples(container, video, time_base, stream_s, horizon_s)
    return VideoInfo(
        kind=kind,
        # A header may say less than the samples hold; the provider measures the samples.
        duration_s=measured_s if measured_s > duration + SLACK_S else duration,
        width=width,
        height=height,
        fps=fps,
        has_audio=bool(container.streams.audio),
        size_bytes=size,
    )


def _check_samples(
    container: InputContainer,
    video: VideoStream,
    time_base: Fraction,
    stream_s: float | None,
    horizon_s: float,
) -> float:
    """Demux the video packets up to ``horizon_s`` (cheap: no decoding) and decode until the
    first picture; returns how far the packets reach (up to just past ``horizon_s``).

    Opening only reads the index; this proves the samples are really there and decodable.
    Past the longest part the model edits nothing is billed or edited, so nothing further is
    read.
    """
    start = video.start_time or 0
    end_s = 0.0
    decoded = False
    # One decoder thread: the first picture is all we need, and memory stays predictable.
    video.codec_context.thread_count = 1
    for packet in container.demux(video):
        if packet.size == 0:  # end-of-stream marker
            continue
        if packet.is_corrupt:
            raise unreadable_clip()
        if packet.pts is not None:
            pts_end = packet.pts - start + (packet.duration or 0)
            end_s = max(end_s, float(pts_end * time_base))
        if not decoded:
            decoded = bool(video.codec_context.decode(packet))
        if decoded and end_s > horizon_s:
            break
    if not decoded:
        decoded = bool(video.codec_context.decode(None))  # drain frames held for reordering
    if not decoded:
        raise unreadable_clip()
    if stream_s is not None and end_s < min(stream_s, horizon_s) - SLACK_S:
        raise unreadable_clip("video_truncated")
    return end_s


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
            N_("Reference image {index} could not be read; it may be damaged. "
               "Save it again as JPEG or PNG and try again", index=index),
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
                N_("Reference image {index} is animated; use a still JPEG, PNG or WebP image",
                   index=index),
                code="image_animated",
            )
        image.verify()  # checksums and structure; leaves this Image object unusable
    with Image.open(path, formats=[pillow_format]) as image:
        image.load()  # full decode: catches truncated pixel data that verify() misses
        if image.format != pillow_format or image.size != (width, height):
            raise ValueError("decoder disagrees with the header")
    return width, height


def _too_many_pixels(index: int, size: tuple[int, int] | None) -> MediaRejected:
    text = N_(
        "Reference image {index} is {width}×{height} px; that is too many pixels to process. "
        "Scale it down and try again", index=index, width=size[0], height=size[1],
    ) if size else N_(
        "Reference image {index} has too many pixels to process. Scale it down and try again",
        index=index,
    )
    return MediaRejected(
        text,
        code="image_too_many_pixels",
    )
