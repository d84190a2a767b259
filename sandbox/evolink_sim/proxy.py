"""What the machinery in front of EvoLink sends on its worst day: proxy/CDN error pages,
dropped and reset connections, and faults that last a while.

EvoLink's backend never answers 502 on create and folds 503 into 400 (EVOLINK_API.md §4.1),
so a 5xx HTML page or a dropped connection comes from a proxy or CDN, which may have
passed the request on (task created and billed) before failing ("worst day: a proxy in
front of the service").
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

from aiohttp import web

ProxyStyle = Literal["nginx", "cloudflare"]
# Cloudflare's own 5xx codes; Python's HTTPStatus does not know them.
_CLOUDFLARE_REASONS = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _CLOUDFLARE_REASONS.get(status, "Error")


def proxy_error_page(status: int, style: ProxyStyle = "nginx") -> web.Response:
    """An HTML error page as nginx or Cloudflare sends it: never JSON, no EvoLink envelope."""
    title = f"{status} {_reason(status)}"
    if style == "nginx":
        html = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        headers = {"Server": "nginx"}
    else:
        html = (
            '<!DOCTYPE html>\n<html lang="en-US"><head><title>api.evolink.ai | '
            f'{title}</title></head><body><div id="cf-error-details"><h1>Error {status}</h1>'
            f"<p>{_reason(status)}</p><p>Cloudflare Ray ID: 8f1c2d3e4a5b6c7d</p></div>"
            "</body></html>\n"
        )
        headers = {"Server": "cloudflare", "CF-RAY": "8f1c2d3e4a5b6c7d-FRA"}
    return web.Response(status=status, text=html, content_type="text/html", headers=headers)


def drop_connection(request: web.Request) -> web.Response:
    """Close the socket without answering; the response below is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


def reset_connection(request: web.Request) -> web.Response:
    """Abort the socket with a TCP RST (SO_LINGER 0): the client sees a connection reset."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=499)


@dataclass
class Window:
    """How long a lasting fault bites: the next `requests` requests, or `seconds` provider
    seconds from when it starts. It starts when armed, or (result links) when published."""

    requests: int | None = None
    seconds: float | None = None
    started_at: float | None = None  # provider clock; None until started

    @classmethod
    def of(cls, requests: int | None, seconds: float | None) -> Window:
        """Exactly one of the two; neither means one request."""
        if requests is not None and seconds is not None:
            raise ValueError("give a number of requests or of seconds, not both")
        if seconds is not None:
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
            return cls(seconds=seconds)
        requests = 1 if requests is None else requests
        if requests < 1:
            raise ValueError("count must be >= 1")
        return cls(requests=requests)

    def start(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now

    def hit(self, now: float) -> bool:
        """Does this request fall in the window? (Uses one up when counting requests.)"""
        if self.started_at is None:
            return False
        if self.requests is not None:
            if self.requests <= 0:
                return False
            self.requests -= 1
            return True
        assert self.seconds is not None
        return now < self.started_at + self.seconds

    def over(self, now: float) -> bool:
        if self.started_at is None:
            return False
        if self.requests is not None:
            return self.requests <= 0
        assert self.seconds is not None
        return now >= self.started_at + self.seconds

    def describe(self) -> dict[str, float | int | None]:
        until = None
        if self.seconds is not None and self.started_at is not None:
            until = self.started_at + self.seconds
        return {"requests_left": self.requests, "seconds": self.seconds, "until": until}
