"""Download an attachment or link to disk with a hard byte cap, never blocking the loop.

The cap is enforced on the bytes actually received. ``Content-Length`` only lets us refuse
early: a server may omit it or lie, so reading stops the moment the count passes the cap.
Every hop (the URL and each redirect) passes the caller's :class:`UrlPolicy` first.
Nothing is left behind on failure: the body goes to a uniquely named ``.part`` file next to
``dest`` that is renamed into place only when complete, and deleted on any error or
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from bot.i18n import N_, Text
from bot.media.errors import FileNames, MediaRejected, format_limit_mb, megabytes
from bot.media.filework import FileWork
from bot.media.sniff import SNIFF_BYTES
from bot.media.urlpolicy import UrlPolicy, unresolvable

__all__ = ["FetchLimits", "FetchedFile", "Fetcher", "UrlPolicy", "fetch_to_file"]

_READ_CHUNK: Final = 64 * 1024
# Chunks are batched and written (and hashed) on a file-work thread per MiB. A disk write can
# stall for a long time on a busy or network disk, so it must not run on the loop; batching
# keeps the thread hops to ~100 for a clip at the size cap. One batch is written while the next one
# is received (a second full batch waits for the first), so the network and the disk+hash
# overlap and memory per download stays ~2 MiB (aiohttp stops reading the socket while we
# wait, so the buffer cannot grow behind us).
_WRITE_BATCH: Final = 1024 * 1024
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


class FetchLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_bytes: int = Field(gt=0)
    connect_timeout: float = Field(default=10, gt=0)  # DNS lookup and TCP/TLS connect, per hop
    read_timeout: float = Field(default=30, gt=0)  # longest silence between received bytes
    max_redirects: int = Field(default=3, ge=0)
    # A server dripping one byte every few seconds never trips read_timeout; this bounds the
    # whole download (a clip at the size cap in 5 min needs ~330 kB/s, far below any CDN).
    total_timeout: float = Field(default=300, gt=0)
    # Bytes a second the download must average once `slow_grace` has passed (0: no floor):
    # without it, a drip held one of the few intake slots for the whole total_timeout.
    min_rate: int = Field(default=0, ge=0)
    slow_grace: float = Field(default=10, gt=0)


@dataclass(frozen=True)
class Fetcher:
    """What a download runs on: a connection pool, the resolver its policy checks use (the
    pool's own), and the threads its file is written on."""

    session: aiohttp.ClientSession
    resolver: AbstractResolver
    files: FileWork


class FetchedFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    size: int
    sha256: str  # hex digest of exactly the bytes written to ``path``
    head: bytes = b""  # its first SNIFF_BYTES, to tell its type without reading it again


async def fetch_to_file(
    fetcher: Fetcher,
    url: str,
    dest: Path,
    limits: FetchLimits,
    policy: UrlPolicy,
    *,
    names: FileNames | None = None,
    durable: bool = True,
) -> FetchedFile:
    """Stream ``url`` into ``dest`` (replaced atomically) and return its size and SHA-256.

    ``policy`` is the one for the kind of file (:class:`~bot.media.urlpolicy.FetchPolicies`),
    checked at every hop. ``names`` name the file in refusals ("The clip", "reference image 2").
    ``durable=False`` skips the fsync before the rename: for a caller that syncs the file
    later and checks it before trusting it after a crash (see :func:`sync_file`).
    Raises :class:`MediaRejected` for anything the user can fix or retry.
    """
    label, noun = names or FileNames.file()
    part = _PartFile(
        dest.with_name(f"{dest.name}.{secrets.token_hex(8)}.part"), durable, fetcher.files
    )
    try:
        async with asyncio.timeout(limits.total_timeout):
            async with _final_response(fetcher, policy.parse(url), limits, policy) as resp:
                try:
                    await _receive(resp, part, limits, label, noun)
                except BaseException:
                    resp.close()  # drop the connection instead of draining an unwanted body
                    raise
        fetched = await part.commit(dest)
    except TimeoutError as exc:  # also aiohttp's connect/read timeouts, which subclass it
        raise MediaRejected(
            N_("Downloading {file} took too long; try again or use a smaller file", file=noun),
            code="download_timeout",
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        raise MediaRejected(
            N_("Could not download {file}: the connection broke off. Try again", file=noun),
            code="download_interrupted",
        ) from exc
    except aiohttp.ClientResponseError as exc:  # we never raise_for_status: a protocol error
        raise MediaRejected(
            N_("Could not download {file}: the server sent a broken response", file=noun),
            code="download_bad_response",
        ) from exc
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise MediaRejected(
            N_("That link is not a valid web address"), code="url_invalid"
        ) from exc
    except aiohttp.ClientError as exc:
        raise MediaRejected(
            N_("Could not download {file}: the server could not be reached", file=noun),
            code="download_unreachable",
        ) from exc
    finally:
        await part.discard()  # no-op after a successful commit
    return fetched


async def _receive(
    resp: aiohttp.ClientResponse, part: _PartFile, limits: FetchLimits, label: Text, noun: Text
) -> None:
    if resp.status != 200:
        raise MediaRejected(
            N_("Could not download {file} (HTTP {status})", file=noun, status=resp.status),
            code="download_http_error",
            http_status=resp.status,
        )
    if resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        # We asked for identity. A compressed body could inflate a thousandfold in one read
        # (a gzip bomb) before any count saw it, so it is refused unread.
        raise MediaRejected(
            N_("Could not download {file}: the server sent it compressed", file=noun),
            code="download_encoded",
        )
    limit = format_limit_mb(limits.max_bytes)
    declared = resp.content_length
    if declared is not None and declared > limits.max_bytes:
        raise MediaRejected(
            N_("{file} is {size} MB; the limit is {limit}", file=label,
               size=megabytes(declared, round_up=True), limit=limit),
            code="download_too_large",
        )
    await part.open()
    chunks = resp.content.iter_chunked(_READ_CHUNK)
    started = asyncio.get_running_loop().time()
    while (chunk := await _next_chunk(chunks, limits, started, part.size, noun)) is not None:
        if part.size + len(chunk) > limits.max_bytes:
            raise MediaRejected(
                N_("{file} is larger than the {limit} limit", file=label, limit=limit),
                code="download_too_large",
            )
        await part.write(chunk)


async def _next_chunk(
    chunks: AsyncIterator[bytes], limits: FetchLimits, started: float, received: int,
    noun: Text,
) -> bytes | None:
    """The body's next chunk (None at its end), in time to keep the download's average at
    `limits.min_rate` once past `slow_grace`: the latest moment the bytes so far still meet
    it is the deadline, so a drip is refused as soon as it falls behind, without polling."""
    if not limits.min_rate:
        return await anext(chunks, None)
    deadline = started + max(limits.slow_grace, received / limits.min_rate)
    try:
        async with asyncio.timeout_at(deadline) as pace:
            return await anext(chunks, None)
    except TimeoutError:
        if not pace.expired():
            raise  # aiohttp's own read timeout
        raise MediaRejected(
            N_("Could not download {file}: the server sends it too slowly (less than "
               "{rate} kB a second). Attach the file instead, or use a faster host",
               file=noun, rate=limits.min_rate // 1000),
            code="download_too_slow",
        ) from None


@contextlib.asynccontextmanager
async def _final_response(
    fetcher: Fetcher, url: URL, limits: FetchLimits, policy: UrlPolicy
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Follow redirects by hand so that every hop passes ``policy`` before we connect."""
    visited = {url}
    for _hop in range(limits.max_redirects + 1):
        async with await _request(fetcher, url, limits, policy) as resp:
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECT_STATUSES or location is None:
                yield resp
                return
            try:
                url = url.join(URL(location))
            except ValueError as exc:
                raise aiohttp.InvalidURL(location) from exc
            if url in visited:
                raise MediaRejected(
                    N_("That link redirects in a loop; link straight to the file"),
                    code="url_redirect_loop",
                )
            visited.add(url)
    raise MediaRejected(
        N_("Too many redirects; link straight to the file"), code="url_too_many_redirects"
    )


async def _request(
    fetcher: Fetcher, url: URL, limits: FetchLimits, policy: UrlPolicy
) -> aiohttp.ClientResponse:
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
    )
    # Videos don't compress; "identity" keeps Content-Length meaningful for the early refusal.
    # (Were a server to compress anyway, the cap still counts the decompressed bytes.)
    options: dict[str, Any] = {
        "allow_redirects": False,
        "timeout": timeout,
        "headers": {"Accept-Encoding": "identity"},
    }
    session = fetcher.session
    try:
        async with asyncio.timeout(limits.connect_timeout):
            addresses = await policy.resolve(url, fetcher.resolver)
    except TimeoutError as exc:
        raise unresolvable() from exc
    host = url.raw_host or ""
    if addresses == [host]:  # a literal IP: nothing to pin
        return await session.get(url, **options)
    # Connect to the address we checked, not to whatever the name resolves to next time.
    # TLS still verifies the certificate against the name (server_hostname), the Host header
    # carries the name, and aiohttp's pool keys connections by server_hostname too.
    options["headers"]["Host"] = url.host_port_subcomponent
    if url.scheme == "https":
        options["server_hostname"] = host
    for address in addresses[:-1]:
        # Try the checked addresses in resolver order, like a plain connect would (IPv6 may
        # be listed first on hosts without IPv6 connectivity).
        with contextlib.suppress(aiohttp.ClientConnectorError):
            return await session.get(url.with_host(address), **options)
    return await session.get(url.with_host(addresses[-1]), **options)


def sync_file(path: Path) -> None:
    """Make a file written with ``durable=False`` durable (blocking: run it in a thread)."""
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


class _PartFile:
    """A temporary file written and hashed on the file-work threads, in batches.

    At most one thread job runs at a time, and a batch write is not awaited when it starts:
    the next batch is received meanwhile and waits for it (order, and the memory bound).
    Each thread job is shielded from cancellation and remembered, so :meth:`discard` can wait
    for a write that is still running before it closes and deletes the file; otherwise a
    cancelled download could race its own cleanup and leave a stray file behind. A failed
    write surfaces at the next flush or at commit.
    """

    def __init__(self, path: Path, durable: bool, files: FileWork) -> None:
        self._path = path
        self._durable = durable
        self._files = files
        self._head = b""
        self._opened = False
        self._fh: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._inflight: asyncio.Future[None] | None = None
        self._committed = False
        self.size = 0

    async def open(self) -> None:
        """Start creating the file, without waiting: the first write waits for it."""
        self._opened = True
        await self._settle()
        self._inflight = asyncio.ensure_future(self._files.run(self._open_sync))

    async def write(self, chunk: bytes) -> None:
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._buffer += chunk
        self.size += len(chunk)
        if len(self._buffer) >= _WRITE_BATCH:
            await self._flush()

    async def commit(self, dest: Path) -> FetchedFile:
        if not self._opened:  # _receive refused the answer before opening the file
            await self.open()
        await self._flush()
        await self._in_thread(self._finish_sync, dest)  # after the last write has finished
        self._committed = True
        return FetchedFile(
            path=dest, size=self.size, sha256=self._hash.hexdigest(), head=self._head
        )

    async def discard(self) -> None:
        if self._committed:
            return
        # Shielded as a whole: a second cancellation must not interrupt the cleanup.
        await asyncio.shield(asyncio.ensure_future(self._discard()))

    async def _discard(self) -> None:
        inflight = self._inflight
        if inflight is not None:
            await asyncio.wait([inflight])
            if not inflight.cancelled():
                inflight.exception()  # retrieved: the download already failed for a reason
        await self._files.run(self._discard_sync)

    async def _flush(self) -> None:
        """Start writing the buffered bytes; returns once the previous write has finished."""
        data, self._buffer = self._buffer, bytearray()
        if data:
            await self._settle()
            self._inflight = asyncio.ensure_future(self._files.run(self._write_sync, data))

    async def _settle(self) -> None:
        """Wait for the thread job in flight (if any); re-raises its error."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)

    async def _in_thread(self, fn: Callable[..., None], *args: Any) -> None:
        await self._settle()
        self._inflight = asyncio.ensure_future(self._files.run(fn, *args))
        await asyncio.shield(self._inflight)

    # Runs in worker threads, one at a time (each finished before the next is started).
    def _open_sync(self) -> None:
        self._fh = self._path.open("xb")

    def _write_sync(self, data: bytearray) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._hash.update(data)  # hashlib releases the GIL for large buffers

    def _finish_sync(self, dest: Path) -> None:
        assert self._fh is not None
        self._fh.flush()
        if self._durable:
            # Durable before the rename, so a crash cannot leave a complete-looking empty file.
            os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._path, dest)

    def _discard_sync(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._path.unlink(missing_ok=True)
