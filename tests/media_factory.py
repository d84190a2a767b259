"""Media-intake test files that ``sandbox.media_samples`` does not make.

Generated at test time with PyAV and Pillow; nothing binary is committed. Plain clips and still
images come from ``sandbox.media_samples``; this adds the awkward cases: an index-first clip
(so a truncated copy still opens), an audio-only MP4, animations, and truncation helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import av
from PIL import Image

from sandbox.media_samples import encode_pictures, encode_silence

_AUDIO_RATE = 48_000


def make_faststart_mp4(path: Path, seconds: float, fps: int = 24) -> Path:
    """A 64×64 H.264 clip with ``moov`` before ``mdat``: truncating it keeps the index."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast"}
        encode_pictures(out, video, _changing_pictures(seconds, fps), fps)
    return path


def make_keyframed_mp4(
    path: Path, seconds: float, keyframe_every_s: float, fps: int = 24, with_audio: bool = True,
    container: Literal["mp4", "mov"] = "mp4", audio_codec: Literal["aac", "pcm_s16le"] = "aac",
    fragmented: bool = False,
) -> Path:
    """A 64×64 H.264 clip (with silent sound) whose keyframes come every ``keyframe_every_s``
    seconds exactly, and none in between (scene cuts off): to test cutting at keyframes.
    PCM sound (``pcm_s16le``) only fits a QuickTime ``container``. ``fragmented`` writes an
    empty index and one fragment (moof) per keyframe, as live recorders and streamers do."""
    gop = str(max(1, round(keyframe_every_s * fps)))
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fragmented else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        video.options = {
            "preset": "ultrafast", "g": gop, "keyint_min": gop, "sc_threshold": "0",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        audio = out.add_stream(audio_codec, rate=_AUDIO_RATE) if with_audio else None
        encode_pictures(out, video, _changing_pictures(seconds, fps), fps)
        if audio is not None:
            encode_silence(out, audio, seconds)
    return path


def _changing_pictures(seconds: float, fps: int) -> Iterator[Image.Image]:
    """64×64 pictures that change every frame, so that every packet has real payload."""
    for i in range(round(seconds * fps)):
        yield Image.new("RGB", (64, 64), (i * 9 % 256, 80, 30))


def video_packet_offsets(path: Path) -> list[tuple[int, int]]:
    """``(file offset, size)`` of each video packet, to truncate exactly between samples."""
    with av.open(str(path)) as container:
        return [
            (packet.pos, packet.size)
            for packet in container.demux(video=0)
            if packet.size and packet.pos is not None
        ]


def make_audio_only(path: Path, seconds: float) -> Path:
    """An MP4 holding only silent AAC: a valid container, but no clip."""
    with av.open(str(path), "w", format="mp4") as out:
        encode_silence(out, out.add_stream("aac", rate=_AUDIO_RATE), seconds)
    return path


def make_animated(path: Path, w: int, h: int, fmt: Literal["WEBP", "PNG", "GIF"]) -> Path:
    """Three different frames in one file (APNG for ``PNG``)."""
    frames = [Image.new("RGB", (w, h), (i * 80, 120, 200 - i * 60)) for i in range(3)]
    if fmt == "GIF":
        frames = [frame.convert("P") for frame in frames]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def truncate(source: Path, dest: Path, keep: int) -> Path:
    dest.write_bytes(source.read_bytes()[:keep])
    return dest
