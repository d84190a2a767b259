"""Signed attachment URLs, as Discord's CDN has served them since December 2023.

https://discord.com/developers/docs/reference#signed-attachment-cdn-urls: an attachment URL
carries ``ex`` (expiry, hex UNIX seconds), ``is`` (issued, hex) and ``hm`` (a signature over
both). A URL without them, with a wrong signature, or past ``ex`` answers 404 "This content is
no longer available.". Discord hands out freshly signed URLs whenever it sends the message
or interaction again; it states no lifetime, observed ~24 h, which is the default here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Final

from .clock import Clock

DEFAULT_LIFETIME_S: Final = 24 * 3600.0


class CdnSigner:
    def __init__(self, clock: Clock, lifetime_s: float = DEFAULT_LIFETIME_S) -> None:
        self._clock = clock
        self.lifetime_s = lifetime_s
        self._key = secrets.token_bytes(32)

    def sign(self, url: str, path: str) -> str:
        """``url`` (whose path is ``path``) with a signature valid for the lifetime."""
        issued = int(self._clock.wall())
        expires = int(issued + self.lifetime_s)
        return f"{url}?ex={expires:x}&is={issued:x}&hm={self._mac(path, expires, issued)}&"

    def valid(self, path: str, query: Mapping[str, str]) -> bool:
        try:
            expires, issued = int(query["ex"], 16), int(query["is"], 16)
        except (KeyError, ValueError):
            return False
        signed = hmac.compare_digest(query.get("hm", ""), self._mac(path, expires, issued))
        return signed and self._clock.wall() < expires

    def _mac(self, path: str, expires: int, issued: int) -> str:
        message = f"{path}|{expires:x}|{issued:x}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
