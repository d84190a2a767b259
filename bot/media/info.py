"""What probing learns about a file: plain data, shared by the prober and the rules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.media.sniff import MediaKind


class VideoInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: MediaKind
    duration_s: float
    width: int
    height: int
    fps: float | None
    has_audio: bool
    size_bytes: int


class ImageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: MediaKind
    width: int
    height: int
    size_bytes: int
