"""Hostile web servers on loopback https, speaking raw HTTP/1.1 so they can lie.

aiohttp's own server would not send more bytes than the `Content-Length` it announced, so
these answers are written by hand on an `asyncio` TLS server. The certificate comes from a
throwaway CA made by `trustme`; the bot trusts it through `SSL_CERT_FILE` (OpenSSL's default
verify paths, which Python's default SSL context loads), and nothing else does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import trustme

from sandbox.media_samples import make_mp4_bytes

HOST = "127.0.0.1"
MB = 1_000_000
DRIP_DECLARED_BYTES = 2 * MB
GZIP_BOMB_INFLATED_BYTES = 4_000 * MB  # what the body would inflate to, read to the end
_GZIP_BLOCK = 1024 * 1024
LIE_DECLARED_TOO_LARGE = 50 * MB

Writer = asyncio.StreamWriter
Handler = Callable[[Writer], Awaitable[None]]


def _head(status: str, *headers: str) -> bytes:
    """A response head; every connection serves one answer (no reuse to race with)."""
    lines = [f"HTTP/1.1 {status}", *headers, "Connection: close", ""]
    return ("\r\n".join(lines) + "\r\n").encode()


def gzip_bomb_parts() -> tuple[bytes, bytes]:
    """(first part, repeated part) of a gzip stream of zeros that never ends.

    Each part is one MiB of zeros deflated and ended by a full flush, which empties the
    compressor's window: every later MiB compresses to exactly the same bytes, so the body
    is a ~1 KB block sent again and again (RFC 1951 §3.2.3, a stored/compressed block
    boundary; zlib's Z_FULL_FLUSH).
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(_GZIP_BLOCK)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    repeated = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH) == repeated
    return first, repeated


class HostileServer:
    """One https server; each path is one attack. `drop_connections()` ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = workdir / "hostile-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(HOST).configure_cert(self._tls)
        self._gzip_first, self._gzip_repeated = gzip_bomb_parts()
        self._clip = make_mp4_bytes(4.0, 320, 240)
        self._routes: dict[str, Handler] = {
            "/gzip-bomb.mp4": self._gzip_bomb,
            "/slow-drip.mp4": self._slow_drip,
            "/loop/a.mp4": self._redirect_to("/loop/b.mp4"),
            "/loop/b.mp4": self._redirect_to("/loop/a.mp4"),
            "/length-too-small.mp4": self._length_too_small,
            "/length-too-large.mp4": self._length_too_large,
        }
        self._server: asyncio.Server | None = None
        self._open: set[Writer] = set()
        self.port = 0

    def url(self, path: str) -> str:
        assert path in self._routes, path
        return f"https://{HOST}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_connections(self) -> None:
        """Cut every open connection (a dripping answer would otherwise run for minutes)."""
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        self._open.add(writer)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode("ascii", "replace")
            handler = self._routes.get(path)
            if handler is None:
                writer.write(_head("404 Not Found", "Content-Length: 0"))
            else:
                await handler(writer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the bot hung up: that is what these answers are for
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    async def _gzip_bomb(self, writer: Writer) -> None:
        """Declares gzip although the bot asked for identity; GBs of zeros once inflated."""
        writer.write(_head(
            "200 OK", "Content-Type: video/mp4", "Content-Encoding: gzip",
        ))
        writer.write(self._gzip_first)
        for _ in range(GZIP_BOMB_INFLATED_BYTES // _GZIP_BLOCK - 1):
            if writer.transport.is_closing():
                return
            writer.write(self._gzip_repeated)
            await writer.drain()

    async def _slow_drip(self, writer: Writer) -> None:
        """One byte a second: never silent long enough for a read timeout."""
        writer.write(_head(
            "200 OK", "Content-Type: video/mp4", f"Content-Length: {DRIP_DECLARED_BYTES}",
        ))
        for index in range(DRIP_DECLARED_BYTES):
            if writer.transport.is_closing():
                return
            writer.write(self._clip[index : index + 1] or b"\0")
            await writer.drain()
            await asyncio.sleep(1.0)  # the attack's pace

    def _redirect_to(self, target: str) -> Handler:
        async def redirect(writer: Writer) -> None:
            writer.write(_head("302 Found", f"Location: {target}", "Content-Length: 0"))

        return redirect

    async def _length_too_small(self, writer: Writer) -> None:
        """Announces 1 kB (under any cap) and sends a whole clip after it.

        One write, so the answer and the bytes past its announced end reach the bot together
        (one TLS record) and it meets the surplus while it reads the announced body.
        """
        head = _head("200 OK", "Content-Type: video/mp4", "Content-Length: 1000")
        writer.write(head + self._clip)

    async def _length_too_large(self, writer: Writer) -> None:
        """Announces 50 MB, sends a 4 s clip's bytes, and hangs up."""
        writer.write(_head(
            "200 OK", "Content-Type: video/mp4", f"Content-Length: {LIE_DECLARED_TOO_LARGE}",
        ))
        writer.write(self._clip)


@contextlib.asynccontextmanager
async def hostile_server(workdir: Path) -> AsyncIterator[HostileServer]:
    server = HostileServer(workdir)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
