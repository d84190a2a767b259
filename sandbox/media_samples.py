"""Real, tiny media files generated at test time (never downloaded).

Everything here writes genuine containers/images that real decoders accept, so code
under test exercises its actual sniffing and probing paths:

    from sandbox.media_samples import make_mp4, make_png, probe_video

    clip = make_mp4(tmp_path / "in.mp4", seconds=4)            # 64x64, 24 fps, H.264
    mov = make_mp4(tmp_path / "in.mov", seconds=4, container="mov", with_audio=True)
    still = make_png(tmp_path / "ref.png", 32, 32)
    assert probe_video(clip).duration_s == 4.0

Frame counts are `round(seconds * fps)`, so the container duration is exact when
`seconds * fps` is a whole number (audio, when asked for, is trimmed to the same length).
All functions are synchronous and quick (a 10 s clip takes well under 100 ms); call them
from a fixture, or through `asyncio.to_thread` inside a running event loop.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
from PIL import Image

__all__ = [
    "VideoInfo",
    "make_gif",
    "make_jpeg",
    "make_mp4",
    "make_mp4_bytes",
    "make_png",
    "make_webp",
    "pad_file",
    "probe_video",
]

Rgb = tuple[int, int, int]

_AUDIO_RATE = 48_000
_AUDIO_FRAME = 1024  # AAC frame size; feeding whole frames avoids encoder warnings


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` reads back from a container."""

    duration_s: float
    width: int
    height: int
    has_audio: bool
    format_name: str


def make_mp4(
    path: Path | str,
    seconds: float,
    width: int = 64,
    height: int = 64,
    fps: int = 24,
    with_audio: bool = False,
    container: Literal["mp4", "mov"] = "mp4",
    color: Rgb = (200, 40, 40),
    codec: Literal["libx264", "mpeg4"] = "libx264",
) -> Path:
    """Write a solid-colour clip (ISO-BMFF `mp4` or QuickTime `mov`) and return its path.

    `width`/`height` must be even (yuv420p). `with_audio` adds a silent mono AAC track.
    """
    path = Path(path)
    _write_video(path, seconds, width, height, fps, with_audio, container, color, codec)
    return path


def make_mp4_bytes(
    seconds: float,
    width: int = 64,
    height: int = 64,
    fps: int = 24,
    with_audio: bool = False,
    container: Literal["mp4", "mov"] = "mp4",
    color: Rgb = (200, 40, 40),
    codec: Literal["libx264", "mpeg4"] = "libx264",
) -> bytes:
    """Same as `make_mp4`, but return the bytes instead of writing a file."""
    buf = io.BytesIO()
    _write_video(buf, seconds, width, height, fps, with_audio, container, color, codec)
    return buf.getvalue()


def _write_video(
    target: Path | io.BytesIO,
    seconds: float,
    width: int,
    height: int,
    fps: int,
    with_audio: bool,
    container: str,
    color: Rgb,
    codec: str,
) -> None:
    if width % 2 or height % 2:
        raise ValueError("width and height must be even for yuv420p")
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    # A file-like target has no extension for PyAV to guess from, so always name the muxer.
    with av.open(target, "w", format=container) as out:
        video = out.add_stream(codec, rate=fps)
        assert isinstance(video, av.VideoStream)
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        if codec == "libx264":
            video.options = {"preset": "ultrafast"}
        audio = None
        if with_audio:
            audio = out.add_stream("aac", rate=_AUDIO_RATE)
            assert isinstance(audio, av.AudioStream)
            audio.layout = "mono"

        picture = Image.new("RGB", (width, height), color)
        encode_pictures(out, video, itertools.repeat(picture, max(1, round(seconds * fps))), fps)

        if audio is not None:
            encode_silence(out, audio, seconds)


def encode_pictures(
    out: av.container.OutputContainer, video: av.VideoStream, pictures: Iterable[Image.Image],
    fps: int,
) -> None:
    """One picture a frame at `fps`, then the encoder flushed."""
    for index, picture in enumerate(pictures):
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        out.mux(video.encode(frame))
    out.mux(video.encode(None))


def encode_silence(
    out: av.container.OutputContainer, audio: av.AudioStream, seconds: float
) -> None:
    """`seconds` of mono silence in the stream's own sample format (fltp for AAC, s16 for
    PCM), in whole encoder frames but the last, then the encoder flushed."""
    sample_format, rate = audio.codec_context.format.name, audio.codec_context.sample_rate
    total = int(seconds * rate)
    for start in range(0, total, _AUDIO_FRAME):
        count = min(_AUDIO_FRAME, total - start)
        samples = av.AudioFrame(format=sample_format, layout="mono", samples=count)
        samples.planes[0].update(bytes(samples.planes[0].buffer_size))
        samples.sample_rate = rate
        samples.pts = start
        samples.time_base = Fraction(1, rate)
        out.mux(audio.encode(samples))
    out.mux(audio.encode(None))


def probe_video(source: Path | str | bytes) -> VideoInfo:
    """Read duration, size and audio presence of a video file (or its bytes) with PyAV."""
    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(opened, "r") as container:
        video = container.streams.video[0]
        if container.duration is not None:
            duration = container.duration / av.time_base
        elif video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = 0.0
        return VideoInfo(
            duration_s=float(duration),
            width=int(video.codec_context.width),
            height=int(video.codec_context.height),
            has_audio=bool(container.streams.audio),
            format_name=str(container.format.name),
        )


def _save_image(path: Path | str, width: int, height: int, color: Rgb, fmt: str) -> Path:
    path = Path(path)
    mode = "P" if fmt == "GIF" else "RGB"
    image = Image.new("RGB", (width, height), color)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


def make_png(
    path: Path | str, width: int = 32, height: int = 32, color: Rgb = (40, 160, 60)
) -> Path:
    """Write a solid-colour PNG."""
    return _save_image(path, width, height, color, "PNG")


def make_jpeg(
    path: Path | str, width: int = 32, height: int = 32, color: Rgb = (40, 60, 200)
) -> Path:
    """Write a solid-colour baseline JPEG."""
    return _save_image(path, width, height, color, "JPEG")


def make_webp(
    path: Path | str, width: int = 32, height: int = 32, color: Rgb = (220, 200, 40)
) -> Path:
    """Write a solid-colour WebP (RIFF....WEBP)."""
    return _save_image(path, width, height, color, "WEBP")


def make_gif(
    path: Path | str, width: int = 32, height: int = 32, color: Rgb = (120, 40, 160)
) -> Path:
    """Write a solid-colour GIF (a format EvoLink does *not* accept: handy for rejections)."""
    return _save_image(path, width, height, color, "GIF")


def pad_file(path: Path | str, total_bytes: int, source: Path | str | None = None) -> Path:
    """Make `path` exactly `total_bytes` long: the start of `source` (if given) then zeros.

    Produces "valid magic, oversized file" inputs cheaply: a real header that sniffs
    correctly, followed by padding, without encoding megabytes of media.
    """
    path = Path(path)
    head = Path(source).read_bytes()[:total_bytes] if source is not None else b""
    with path.open("wb") as out:
        out.write(head)
        remaining = total_bytes - len(head)
        chunk = bytes(1 << 20)
        while remaining > 0:
            step = min(remaining, len(chunk))
            out.write(chunk[:step])
            remaining -= step
    return path
