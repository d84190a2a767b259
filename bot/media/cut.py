"""Cut a clip to the part the member chose, in a prober worker (never in the bot's process).

Stream copy when a keyframe lies within :data:`KEYFRAME_TOLERANCE_S` of the chosen start (the
part edited then starts at most that far from what the member asked, and is shown as it is);
otherwise the part is decoded and encoded again (H.264 and AAC) from the exact start. Either
way only packets that end within ``length_s`` of the cut's start are written, so the cut clip
is never longer than the model bills: the provider rounds any part of a second up
(EVOLINK_API.md §7). The output stops growing at ``max_bytes`` (the provider's size cap).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Final

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from bot.i18n import N_
from bot.media.errors import MediaRejected, format_limit_mb, too_complex_clip, unreadable_clip
from bot.media.probe import open_clip, video_stream_of
from bot.media.prober import ProbeFailed, Prober
from bot.media.sniff import sniff_file_sync
from bot.media.validation import ClipRules, CutPlan

log = logging.getLogger(__name__)

# How far from the asked start a keyframe may be for a copy without re-encoding: less than a
# member choosing a second by eye notices; the accepted message shows where the cut starts.
KEYFRAME_TOLERANCE_S: Final = 0.25
# Re-encoding must fit the pool's memory cap: one thread and no look-ahead ("zerolatency")
# keep a 4K part within PROBE_MEMORY_MB's default; x264's default look-ahead does not.
_ENCODER_OPTIONS: Final = {
    "preset": "veryfast", "tune": "zerolatency", "crf": "18", "threads": "1"
}
_ENCODER_TICKS: Final = 90_000  # MPEG's clock: exact for every usual frame rate
# A decoder holds reordered pictures back; packets this far past the cut's end release the
# last ones that belong to it (B-frame delays are a few frames).
_REORDER_MARGIN_S: Final = 1.0


@dataclass(frozen=True)
class CutFile:
    start_s: float  # where the cut really starts: a keyframe's time, or the asked start
    copied: bool  # stream copy at a keyframe (else decoded and encoded again)
    size: int
    sha256: str


async def cut_clip(
    prober: Prober, src: Path, dest: Path, plan: CutPlan, rules: ClipRules
) -> CutFile:
    """Cut ``plan``'s part of ``src`` into ``dest`` (same container) in a prober worker."""
    try:
        cut = await prober.run_within(
            prober.limits.cut_timeout_s, _cut_clip_sync, src, dest, plan, rules
        )
    except ProbeFailed as exc:
        raise too_complex_clip(rules.model_range_text) from exc
    how = "stream copy" if cut.copied else "re-encoded"
    log.info("clip cut from %.3f s (asked %.3f s) for %g s: %s", cut.start_s, plan.start_s,
             plan.length_s, how)
    return cut


def _cut_clip_sync(src: Path, dest: Path, plan: CutPlan, rules: ClipRules) -> CutFile:
    try:
        # The source's own container (its kind names FFmpeg's muxer): a copied stream that
        # a QuickTime file may hold (PCM sound, ProRes) need not fit MP4's list.
        muxer = sniff_file_sync(src).value
        keyframe_s = _write_cut(src, dest, muxer, plan, rules.max_bytes)
    except MemoryError:
        raise  # the worker must see it as memory (see bot.media.probe)
    except (av.FFmpegError, OSError, ValueError, ZeroDivisionError) as exc:
        # The clip passed its probe: what fails now is mostly the encoder meeting the
        # memory cap (x264 reports it as an external library's error), or damage past
        # what the probe read. Either way the member's remedy is a simpler export.
        raise too_complex_clip(rules.model_range_text) from exc
    digest = hashlib.sha256()
    with dest.open("rb") as written:
        while chunk := written.read(1 << 20):
            digest.update(chunk)
    return CutFile(
        start_s=plan.start_s if keyframe_s is None else keyframe_s, copied=keyframe_s is not None,
        size=dest.stat().st_size, sha256=digest.hexdigest(),
    )


def _write_cut(
    src: Path, dest: Path, muxer: str, plan: CutPlan, max_bytes: int
) -> float | None:
    """Returns the keyframe's time the copy starts at, or None when encoded again."""
    start_s, length_s = plan.start_s, plan.length_s
    with open_clip(src) as source:
        video = video_stream_of(source)
        keyframe_s = _keyframe_near(source, video, start_s)
    with open_clip(src) as source, dest.open("wb") as sink:
        video = video_stream_of(source)
        audio = source.streams.audio[0] if source.streams.audio else None
        with av.open(sink, "w", format=muxer) as out:
            if keyframe_s is not None:
                _copy(source, out, sink, video, audio, keyframe_s, length_s, max_bytes)
            else:
                _encode(source, out, sink, video, audio, start_s, length_s, max_bytes)
    return keyframe_s


def _seconds(stream: VideoStream | AudioStream, ticks: int | None) -> float:
    if ticks is None or stream.time_base is None:
        raise unreadable_clip()
    return float((ticks - (stream.start_time or 0)) * stream.time_base)


def _seek(source: InputContainer, video: VideoStream, start_s: float) -> None:
    """To the last keyframe at or before ``start_s`` (FFmpeg's backward seek)."""
    if video.time_base is None:
        raise unreadable_clip()
    target = (video.start_time or 0) + int(start_s / video.time_base)
    source.seek(target, stream=video, backward=True)


def _keyframe_near(source: InputContainer, video: VideoStream, start_s: float) -> float | None:
    """The time of a keyframe within the tolerance of ``start_s``, if there is one.

    Demuxing stops past the tolerance, so a clip without keyframes reads only that far."""
    _seek(source, video, start_s)
    for packet in source.demux(video):
        if packet.pts is None:
            continue
        at = _seconds(video, packet.pts)
        if at > start_s + KEYFRAME_TOLERANCE_S:
            return None
        if packet.is_keyframe and at >= start_s - KEYFRAME_TOLERANCE_S:
            return max(at, 0.0)
    return None


def _packets(
    source: InputContainer, streams: list[VideoStream | AudioStream], start_s: float
) -> Iterator[av.Packet[Any]]:
    _seek(source, next(s for s in streams if isinstance(s, VideoStream)), start_s)
    for packet in source.demux(*streams):
        if packet.size == 0:
            continue
        if packet.is_corrupt:
            raise unreadable_clip()
        yield packet


def _within(packet: av.Packet[Any], start_s: float, length_s: float) -> bool | None:
    """True to keep, False to skip, None when every later packet of its stream ends past
    the cut (decode order: a packet is presented no earlier than it is decoded)."""
    stream = packet.stream
    assert isinstance(stream, VideoStream | AudioStream)
    if packet.pts is None:
        return False
    begins = _seconds(stream, packet.pts) - start_s
    duration = float((packet.duration or 0) * (stream.time_base or 0))
    decoded = _seconds(stream, packet.dts if packet.dts is not None else packet.pts) - start_s
    if decoded > length_s:
        return None
    return begins >= -1e-9 and begins + duration <= length_s + 1e-9


def _copy(
    source: InputContainer, out: OutputContainer, sink: BinaryIO, video: VideoStream,
    audio: AudioStream | None, start_s: float, length_s: float, max_bytes: int,
) -> None:
    inputs: list[VideoStream | AudioStream] = [video, *([audio] if audio else [])]
    outputs = {s.index: out.add_stream_from_template(s) for s in inputs}
    finished: set[int] = set()
    for packet in _packets(source, inputs, start_s):
        keep = _within(packet, start_s, length_s)
        if keep is None:
            finished.add(packet.stream.index)
            if len(finished) == len(inputs):
                break
            continue
        if not keep or packet.stream.index in finished:
            continue
        stream = packet.stream
        shift = (stream.start_time or 0) + round(start_s / (stream.time_base or 1))
        packet.pts = (packet.pts or 0) - shift
        packet.dts = None if packet.dts is None else packet.dts - shift
        packet.stream = outputs[stream.index]
        out.mux(packet)
        _check_size(sink, max_bytes)


def _encode(
    source: InputContainer, out: OutputContainer, sink: BinaryIO, video: VideoStream,
    audio: AudioStream | None, start_s: float, length_s: float, max_bytes: int,
) -> None:
    inputs: list[VideoStream | AudioStream] = [video, *([audio] if audio else [])]
    encoding = _Encoding(out, sink, video, audio, start_s, length_s, max_bytes)
    finished: set[int] = set()
    for packet in _packets(source, inputs, start_s):
        decoded_at = packet.dts if packet.dts is not None else packet.pts
        if _seconds(packet.stream, decoded_at) > start_s + length_s + _REORDER_MARGIN_S:
            finished.add(packet.stream.index)  # its last pictures within the cut are out
            if len(finished) == len(inputs):
                break
            continue
        encoding.take(packet.stream, packet.decode())
    for stream in inputs:
        if stream.index not in finished:  # the clip ended first: drain what is held back
            encoding.take(stream, stream.codec_context.decode(None))
    encoding.finish()


class _Encoding:
    """H.264 and AAC encoders fed the decoded frames that lie within the cut."""

    def __init__(
        self, out: OutputContainer, sink: BinaryIO, video: VideoStream,
        audio: AudioStream | None, start_s: float, length_s: float, max_bytes: int,
    ) -> None:
        self.out, self.sink, self.max_bytes = out, sink, max_bytes
        self.start_s, self.length_s = start_s, length_s
        rate = video.average_rate or video.guessed_rate or Fraction(30)
        self.frame_s = float(1 / rate)
        self.video = out.add_stream("libx264", rate=rate, options=dict(_ENCODER_OPTIONS))
        # yuv420p needs even sides; a pixel less is not worth refusing a clip for.
        self.video.width = video.codec_context.width & ~1
        self.video.height = video.codec_context.height & ~1
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = Fraction(1, _ENCODER_TICKS)
        video.codec_context.thread_count = 1
        self.sound = None
        if audio is not None:
            self.sound = out.add_stream("aac", rate=audio.codec_context.sample_rate)
            self.sound.layout = audio.codec_context.layout

    def take(self, stream: VideoStream | AudioStream, frames: Iterable[Any]) -> None:
        for frame in frames:
            if frame.pts is None:
                continue
            at = _seconds(stream, frame.pts) - self.start_s
            if isinstance(frame, av.VideoFrame) and self._within(at, self.frame_s):
                picture = frame.reformat(self.video.width, self.video.height, "yuv420p")
                picture.pts = round(at * _ENCODER_TICKS)
                picture.time_base = Fraction(1, _ENCODER_TICKS)
                self.out.mux(self.video.encode(picture))
            elif (
                self.sound is not None and isinstance(frame, av.AudioFrame)
                and self._within(at, frame.samples / frame.sample_rate)
            ):
                frame.pts = round(at * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
                self.out.mux(self.sound.encode(frame))
            _check_size(self.sink, self.max_bytes)

    def finish(self) -> None:
        self.out.mux(self.video.encode(None))
        if self.sound is not None:
            self.out.mux(self.sound.encode(None))

    def _within(self, at: float, duration: float) -> bool:
        return at >= -1e-9 and at + duration <= self.length_s + 1e-9


def _check_size(sink: BinaryIO, max_bytes: int) -> None:
    if sink.tell() > max_bytes:
        raise MediaRejected(
            N_("The cut part of the clip would be over {limit}; export the clip again at a lower "
               "quality and try again", limit=format_limit_mb(max_bytes)),
            code="video_cut_too_large",
        )
