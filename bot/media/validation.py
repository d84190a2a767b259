"""Intake rules for clips and reference images, as pure functions with user-facing refusals.

Every check raises :class:`MediaRejected` with a sentence the user can act on, or returns None.
The limits are EvoLink's (EVOLINK_API.md §6; a clip's length is billed clamped, not refused)
plus a few of Kling's that EvoLink does not state but upstream enforces after the user has
waited (image size and aspect), so users learn before spending. Resolution is left to the
provider except for absurd values.
"""

from __future__ import annotations

import math
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.evolink.spec import MIN_CLIP_SECONDS, ModelSpec, format_seconds_range, whole_seconds_up
from bot.i18n import N_
from bot.media.errors import MediaRejected, format_clock, format_limit_mb, megabytes, seconds
from bot.media.info import ImageInfo, VideoInfo
from bot.media.sniff import MediaKind

__all__ = [
    "MAX_SOURCE_SECONDS",
    "ClipRules",
    "CutPlan",
    "ImageRules",
    "MediaRejected",
    "check_image",
    "check_image_count",
    "check_image_kind",
    "check_start",
    "check_video",
    "check_video_dimensions",
    "check_video_kind",
    "plan_cut",
]

# The longest clip the bot cuts a part from. Our rule, not the provider's: it bounds what a
# clip's index may list and how far a cut reads (hostile-input limits), and ten minutes is
# more than a member picks a few seconds from.
MAX_SOURCE_SECONDS: Final = 600

SUPPORTED_VIDEO_KINDS = frozenset({MediaKind.MP4, MediaKind.MOV})
SUPPORTED_IMAGE_KINDS = frozenset({MediaKind.JPEG, MediaKind.PNG, MediaKind.WEBP})
_VIDEO_HINT = N_("attach an .mp4 or .mov clip")
_IMAGE_HINT = N_("use JPEG, PNG or WebP")


class ClipRules(BaseModel):
    """Limits for the one input clip (:meth:`for_model`).

    Length: the provider bills a clip shorter than the model's minimum as the minimum and a
    longer one as the maximum (EVOLINK_API.md §6), so any length from the bot's floor up is
    accepted and billed clamped (``ModelSpec.billed_seconds``); size is the model's cap.
    """

    model_config = ConfigDict(frozen=True)

    min_s: float = Field(gt=0)
    max_bytes: int = Field(gt=0)
    # The lengths the model edits (its billing range). Probing reads no further than the
    # maximum, and a clip whose index lists more frames than that range allows is refused.
    model_min_s: int = Field(gt=0)
    model_max_s: int = Field(gt=0)
    # A longer clip is cut to ``model_max_s`` (:func:`plan_cut`) from the member's start.
    source_max_s: int = Field(default=MAX_SOURCE_SECONDS, gt=0)
    # EvoLink states no resolution limit for O1 edit and Kling's 720–2160 px may not apply on
    # EvoLink's route, so real-world sizes go to the provider; only sizes no camera or editor
    # produces for this purpose are refused here.
    min_side: int = Field(default=64, gt=0)
    max_side: int = Field(default=4096, gt=0)

    @classmethod
    def for_model(cls, spec: ModelSpec) -> ClipRules:
        return cls(
            min_s=MIN_CLIP_SECONDS, max_bytes=spec.max_clip_bytes,
            model_min_s=spec.min_seconds, model_max_s=spec.max_seconds,
        )

    @property
    def model_range_text(self) -> str:
        return format_seconds_range(self.model_min_s, self.model_max_s)

    @model_validator(mode="after")
    def _ordered(self) -> ClipRules:
        if self.min_side > self.max_side or self.model_min_s > self.model_max_s:
            raise ValueError("minimums must not exceed maximums")
        return self


class ImageRules(BaseModel):
    """Limits for reference images: size and count are the model's (:meth:`for_model`),
    the 300 px and 1:2.5 are Kling's."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = Field(gt=0)
    max_count: int = Field(ge=0)
    min_side: int = Field(default=300, gt=0)
    max_aspect: float = Field(default=2.5, ge=1)  # long side / short side

    @classmethod
    def for_model(cls, spec: ModelSpec) -> ImageRules:
        return cls(max_bytes=spec.max_image_bytes, max_count=spec.max_images)


def check_video_kind(kind: MediaKind) -> None:
    if kind in SUPPORTED_VIDEO_KINDS:
        return
    if kind is MediaKind.UNKNOWN:
        reason = N_("That file is not a video we can read: {hint}", hint=_VIDEO_HINT)
    elif kind.is_video:
        reason = N_("That file is {kind}; {hint}", kind=kind.label, hint=_VIDEO_HINT)
    else:
        reason = N_("That file is {kind}, not a video: {hint}", kind=kind.label, hint=_VIDEO_HINT)
    raise MediaRejected(reason, code="video_unsupported_type")


def check_video(info: VideoInfo, rules: ClipRules) -> None:
    check_video_kind(info.kind)
    if info.size_bytes > rules.max_bytes:
        raise MediaRejected(
            N_("The clip is {size} MB; the limit is {limit}",
               size=megabytes(info.size_bytes, round_up=True),
               limit=format_limit_mb(rules.max_bytes)),
            code="video_too_large",
        )
    if info.duration_s > rules.source_max_s:
        raise MediaRejected(
            N_("The clip is {length} long; the bot cuts parts from clips of up to {max}. Trim it "
               "and try again.", length=format_clock(info.duration_s),
               max=format_clock(rules.source_max_s)),
            code="video_too_long",
        )
    if info.duration_s < rules.min_s:
        raise MediaRejected(
            N_("The clip is {length} s long; clips must be at least {min} s long. Use a longer "
               "clip and try again.", length=seconds(info.duration_s, direction=-1),
               min=f"{rules.min_s:g}"),
            code="video_too_short",
        )
    if min(info.width, info.height) < rules.min_side:
        raise MediaRejected(
            N_("The clip is {width}×{height} px; clips must be at least {min} px on each side",
               width=info.width, height=info.height, min=rules.min_side),
            code="video_too_small",
        )
    check_video_dimensions(info.width, info.height, rules)


def check_video_dimensions(width: int, height: int, rules: ClipRules) -> None:
    """The upper bound alone: the prober applies it to the declared size before decoding."""
    if max(width, height) > rules.max_side:
        raise MediaRejected(
            N_("The clip is {width}×{height} px; clips can be at most {max} px on each side",
               width=width, height=height, max=rules.max_side),
            code="video_resolution_too_high",
        )


def check_image_count(count: int, rules: ImageRules) -> None:
    if count > rules.max_count:
        raise MediaRejected(
            N_("You attached {count} reference images; the limit is {limit} image", count=count,
               limit=rules.max_count) if rules.max_count == 1 else
            N_("You attached {count} reference images; the limit is {limit} images",
               count=count, limit=rules.max_count),
            code="too_many_images",
        )


def check_image_kind(kind: MediaKind, index: int) -> None:
    """``index`` is 1-based, as the user numbers the attachments."""
    if kind in SUPPORTED_IMAGE_KINDS:
        return
    if kind is MediaKind.UNKNOWN:
        reason = N_("Reference image {index} is not an image we can read; {hint}", index=index,
                    hint=_IMAGE_HINT)
    elif kind.is_image:
        reason = N_("Reference image {index} is {kind}; {hint}", index=index, kind=kind.label,
                    hint=_IMAGE_HINT)
    else:
        reason = N_("Reference image {index} is {kind}, not an image; {hint}", index=index,
                    kind=kind.label, hint=_IMAGE_HINT)
    raise MediaRejected(reason, code="image_unsupported_type")


def check_image(info: ImageInfo, rules: ImageRules, index: int) -> None:
    check_image_kind(info.kind, index)
    if info.size_bytes > rules.max_bytes:
        raise MediaRejected(
            N_("Reference image {index} is {size} MB; the limit is {limit}", index=index,
               size=megabytes(info.size_bytes, round_up=True),
               limit=format_limit_mb(rules.max_bytes)),
            code="image_too_large",
        )
    short, long = sorted((info.width, info.height))
    if short < rules.min_side:
        raise MediaRejected(
            N_("Reference image {index} is {width}×{height} px; images must be at least {min} "
               "px on each side", index=index, width=info.width, height=info.height,
               min=rules.min_side),
            code="image_too_small",
        )
    if long > short * rules.max_aspect:
        ratio = f"{rules.max_aspect:g}"
        raise MediaRejected(
            N_("Reference image {index} is {width}×{height} px; its shape must be between "
               "1:{ratio} (tall) and {ratio}:1 (wide)", index=index, width=info.width,
               height=info.height, ratio=ratio),
            code="image_bad_aspect",
        )


class CutPlan(BaseModel):
    """The part of a clip to cut: ``length_s`` seconds from ``start_s``."""

    model_config = ConfigDict(frozen=True)

    start_s: float = Field(ge=0)
    length_s: float = Field(gt=0)


def check_start(start_s: float, rules: ClipRules) -> None:
    """The member's ``start`` option, before anything is fetched (Discord's number options
    are floats: NaN and infinity are refused here, not by Discord)."""
    if not math.isfinite(start_s) or not 0 <= start_s <= rules.source_max_s:
        raise MediaRejected(
            N_("`start` is the second of your clip the edit begins at: a number from 0 to "
               "{max} (e.g. 12 or 12.5).", max=rules.source_max_s),
            code="start_invalid",
        )


def plan_cut(duration_s: float, start_s: float, rules: ClipRules) -> CutPlan | None:
    """What to cut from a clip of ``duration_s``: None when it is sent whole.

    A clip the model bills in full is sent whole from 0; from any other ``start`` (also in a
    clip that fits) the part from there is cut, because that is what the member asked for.
    A longer clip is cut to the model's maximum, so the member knows what is edited.
    """
    fits = whole_seconds_up(duration_s) <= rules.model_max_s
    if start_s == 0 and fits:
        return None
    clip = N_("Your clip is {length} long", length=format_clock(duration_s))
    latest = format_clock(max(0.0, duration_s - rules.model_min_s))
    if start_s >= duration_s:
        raise MediaRejected(
            N_("{clip}; `start` {start} is past its end. Choose a start at or before {latest}.",
               clip=clip, start=format_clock(start_s), latest=latest),
            code="start_past_end",
        )
    remaining = duration_s - start_s
    if remaining < rules.model_min_s:
        raise MediaRejected(
            N_("{clip}; from `start` {start} only {left} s are left, and this model edits at "
               "least {min} s. Choose a start at or before {latest}.", clip=clip,
               start=format_clock(start_s), left=seconds(remaining, direction=-1),
               min=rules.model_min_s, latest=latest),
            code="start_leaves_too_little",
        )
    return CutPlan(start_s=start_s, length_s=min(remaining, rules.model_max_s))
