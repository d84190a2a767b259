"""Refuse, from the index alone, what cannot be a clip the model edits, before any decoder runs.

The bounds follow from the longest clip the bot cuts a part from (``ClipRules.source_max_s``):
such a clip has at most :data:`MAX_FPS` frames a second. Audio is never decoded, so its bound only
has to keep the index small; it allows uncompressed PCM, which lists one sample per audio
sample (QuickTime ``lpcm``/``sowt``).
"""

from __future__ import annotations

from typing import Final

from bot.i18n import N_, Number
from bot.media.errors import MediaRejected, no_video_track, unreadable_clip
from bot.media.mp4layout import Layout, Track
from bot.media.validation import ClipRules, check_video_dimensions

# The highest frame rate phones record (slow motion); Kling itself takes 24–60 fps
# (EVOLINK_API.md §6, Kling's limits).
MAX_FPS: Final = 240
_MAX_AUDIO_SAMPLES_PER_S: Final = 96_000
# Video sample formats of the MP4 and QuickTime files phones, cameras and editors write:
# H.264, H.265 (incl. Dolby Vision), AV1, VP9, MPEG-4 Part 2, ProRes and Motion JPEG
# (FFmpeg's libavformat/isom.c names them). Any other decoder is attack surface we don't need.
VIDEO_CODECS: Final = frozenset(
    {
        b"avc1", b"avc2", b"avc3", b"avc4", b"hvc1", b"hev1", b"dvh1", b"dvhe", b"dva1",
        b"dvav", b"av01", b"vp09", b"mp4v", b"apcn", b"apch", b"apcs", b"apco", b"ap4h",
        b"ap4x", b"jpeg", b"mjpa",
    }
)
# Samples may lie about their durations by this much before a clip counts as incomplete.
SLACK_S: Final = 0.5


def check_layout(layout: Layout, rules: ClipRules) -> None:
    videos = [track for track in layout.tracks if track.handler == b"vide"]
    if not videos:
        raise no_video_track()
    max_frames = rules.source_max_s * MAX_FPS
    for track in layout.tracks:
        if track.handler == b"soun":
            bound = rules.source_max_s * _MAX_AUDIO_SAMPLES_PER_S
        else:
            bound = max_frames
        if track.all_samples > bound:
            raise _too_many_frames(track.all_samples, rules)
    # Samples of a track no trak describes could be anything: the tighter bound holds.
    if layout.unlisted_fragment_samples > max_frames:
        raise _too_many_frames(layout.unlisted_fragment_samples, rules)
    video = videos[0]
    _check_codec(video.codec)
    check_video_dimensions(video.width, video.height, rules)
    _check_frame_rate(video, rules)
    _check_declared_duration(video)


def _too_many_frames(count: int, rules: ClipRules) -> MediaRejected:
    return MediaRejected(
        N_("The clip lists {count} frames, more than a {minutes}-minute clip can have. Export "
           "it again as a normal .mp4 ({range}, H.264) and try again",
           count=Number(number=count, digits=0), minutes=rules.source_max_s // 60,
           range=rules.model_range_text),
        code="video_too_many_frames",
    )


def _check_codec(codec: bytes) -> None:
    if codec in VIDEO_CODECS:
        return
    # The four bytes are the file's, so only printable ones reach the message.
    name = "".join(chr(byte) for byte in codec if 0x20 < byte < 0x7F) or "unknown"
    raise MediaRejected(
        N_("The clip's video is stored as “{codec}”, which the bot does not read. "
           "Export it again as .mp4 with H.264 or H.265 video and try again", codec=name),
        code="video_codec_unsupported",
    )


def _check_frame_rate(video: Track, rules: ClipRules) -> None:
    seconds = video.sample_seconds
    if not seconds or video.all_samples <= MAX_FPS:
        return  # too short to measure a rate; the sample bound above still holds
    fps = video.all_samples / seconds
    if fps > MAX_FPS:
        raise MediaRejected(
            N_("The clip has {fps} frames per second; clips can have at most {max}. Export "
               "it again at 24–60 fps ({range}) and try again",
               fps=Number(number=fps, digits=0), max=MAX_FPS, range=rules.model_range_text),
            code="video_frame_rate_too_high",
        )


def _check_declared_duration(video: Track) -> None:
    """The media header's length must match its samples': a longer claim hides missing data."""
    declared, covered = video.seconds, video.sample_seconds
    if declared is None or not covered:
        return  # no sample says how long it lasts: nothing to compare
    if covered < declared - SLACK_S:
        raise unreadable_clip("video_truncated")
