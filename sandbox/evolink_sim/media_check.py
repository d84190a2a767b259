"""Fetch and check a task's input URLs the way the provider does after accepting a task.

EvoLink accepts the create call first and finds out later that a URL is unreachable, not a
video or too big; the task then fails (§4.2 `invalid_parameters` for the video,
`image_processing_error` for images). A clip shorter or longer than the model's range is
accepted and billed clamped (§6); a script can make the upstream refuse it instead.
Downloads are capped while streaming, and decoding runs in a worker thread so a slow probe
never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass

import aiohttp
import av
from PIL import Image
from yarl import URL

from .contract import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, MICROSECONDS, ModelSpec
from .netguard import classify_host
from .validation import CreateRequest

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class InputVerdict:
    """`ok` with the probed duration, or the task error the provider would report."""

    ok: bool
    duration_s: float | None = None
    code: str | None = None
    message: str | None = None


class FetchError(Exception):
    pass


def sniff_image(data: bytes) -> str | None:
    """jpeg / png / webp by magic bytes; anything else (gif, heic, avif…) is refused."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def is_iso_bmff(data: bytes) -> bool:
    """mp4 and mov both open with an `ftyp` box: 4-byte size, then the type."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def container_duration_s(data: bytes) -> float:
    """The clip's length as billed: the container duration PyAV/FFmpeg reports.

    That is the movie header's length in whole µs (for fragmented files FFmpeg's estimate
    from the tracks), which can exceed the video track's own length (a longer audio track,
    fragmented MP4). It is the figure the bot bills on too (bot/media/probe.py). With no
    container duration, the longest stream counts (billing the most: the reading hardest on
    the client). Raises when the data is not a video or tells no length.
    """
    # "mov" is FFmpeg's MP4/MOV demuxer: the only formats EvoLink accepts (§1.1).
    with av.open(io.BytesIO(data), "r", format="mov", metadata_errors="ignore") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        if container.duration:
            return float(container.duration / MICROSECONDS)
        lengths = [
            float(stream.duration * stream.time_base)
            for stream in container.streams
            if stream.duration and stream.time_base
        ]
        if not lengths:
            raise ValueError("no duration")
        return max(lengths)


def _decode_image(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()


class InputChecker:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        allow_private_urls: bool,
        max_video_bytes: int = MAX_VIDEO_BYTES,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        fetch_timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self.allow_private_urls = allow_private_urls
        self._max_video = max_video_bytes
        self._max_image = max_image_bytes
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout_s)

    async def check(
        self, request: CreateRequest, spec: ModelSpec, *, refuse_out_of_range: bool = False
    ) -> InputVerdict:
        video = await self._check_video(request.video_urls[0], spec, refuse_out_of_range)
        if not video.ok:
            return video
        for index, url in enumerate(request.image_urls or ()):
            problem = await self._image_problem(url)
            if problem:
                return InputVerdict(
                    ok=False,
                    code="image_processing_error",
                    message=f"image_urls[{index}] {problem}",
                )
        return video

    async def _check_video(
        self, url: str, spec: ModelSpec, refuse_out_of_range: bool
    ) -> InputVerdict:
        def failed(problem: str) -> InputVerdict:
            return InputVerdict(
                ok=False, code="invalid_parameters", message=f"video_urls[0] {problem}"
            )

        try:
            data = await self._fetch(url, self._max_video)
        except FetchError as exc:
            return failed(str(exc))
        if not is_iso_bmff(data):
            return failed("is not an MP4/MOV file (no ftyp box)")
        try:
            duration_s = await asyncio.to_thread(container_duration_s, data)
        except Exception as exc:  # PyAV raises many error types for corrupt input
            log.debug("probe failed for %s: %r", url, exc)
            return failed("could not be decoded as a video")
        if refuse_out_of_range and not spec.accepts_duration(duration_s):
            return failed(
                f"is {duration_s:.2f} s long; {spec.name} accepts "
                f"{spec.min_seconds}-{spec.max_seconds} s"
            )
        return InputVerdict(ok=True, duration_s=duration_s)

    async def _image_problem(self, url: str) -> str | None:
        try:
            data = await self._fetch(url, self._max_image)
        except FetchError as exc:
            return str(exc)
        if sniff_image(data) is None:
            return "is not a JPEG, PNG or WebP image"
        try:
            await asyncio.to_thread(_decode_image, data)
        except Exception:  # Pillow's errors for truncated/corrupt files vary
            return "could not be decoded as an image"
        return None

    def _refusal(self, url: URL) -> str | None:
        if url.scheme not in ("http", "https"):
            return "could not be fetched: unsupported scheme"
        kind = classify_host(url.host)
        if kind == "loopback" and self.allow_private_urls:
            return None
        if kind in ("loopback", "private"):
            return "could not be fetched: private or internal address"
        # Public hosts are real for EvoLink, but the simulator never leaves this machine.
        return "could not be fetched: host unreachable from the simulator (loopback only)"

    async def _fetch(self, url: str, cap: int) -> bytes:
        """GET with manual redirects (each hop re-checked) and a byte cap while streaming."""
        target = URL(url)
        for _ in range(_MAX_REDIRECTS + 1):
            refusal = self._refusal(target)
            if refusal:
                raise FetchError(refusal)
            try:
                async with self._session.get(
                    target, allow_redirects=False, timeout=self._timeout
                ) as response:
                    if (
                        response.status in (301, 302, 303, 307, 308)
                        and "Location" in response.headers
                    ):
                        target = target.join(URL(response.headers["Location"]))
                        continue
                    if not 200 <= response.status < 300:
                        raise FetchError(f"could not be fetched: HTTP {response.status}")
                    if response.content_length is not None and response.content_length > cap:
                        raise FetchError(f"is larger than {cap // (1024 * 1024)} MB")
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        data += chunk
                        if len(data) > cap:
                            # Stop downloading here: the rest is never read.
                            raise FetchError(f"is larger than {cap // (1024 * 1024)} MB")
                    return bytes(data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise FetchError(f"could not be fetched: {type(exc).__name__}") from None
        raise FetchError("could not be fetched: too many redirects")
