"""What each EvoLink edit model accepts and bills: the one statement of those rules.

Validation, billing, the engine's request models and every member-facing text (command
descriptions, refusals, the /quota footer) read them from here, so switching ``EVOLINK_MODEL``
changes all of them at once. Numbers from shared/EVOLINK_API.md: prompt and image count §1.1,
input limits §6, price and billing clamp §7. The simulator (sandbox/evolink_sim/contract.py)
keeps its own table, taken from the document, and a test compares the two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Final

from bot.i18n import N_, Number, Text

__all__ = [
    "MAX_IMAGES",
    "MAX_PROMPT_CHARS",
    "MB",
    "MIN_CLIP_SECONDS",
    "MODEL_SPECS",
    "QUOTA_REFERENCE_MODEL",
    "RESULT_LINK_LIFETIME_S",
    "TASK_ID_PREFIX",
    "EditModel",
    "ModelSpec",
    "format_limit_mb",
    "format_seconds_range",
    "is_task_id",
    "reported_model_matches",
    "seconds_range_of",
    "spec_for",
    "whole_seconds_up",
]

# EvoLink states its caps in "MB" without saying which megabyte. We read them as decimal
# megabytes (1 MB = 1,000,000 bytes): if EvoLink meant MiB we refuse a few files it would have
# taken, which is cheap; the other reading would let files through that it refuses after the
# user has waited. Every size shown to users uses the same unit.
MB: Final = 1_000_000

MAX_PROMPT_CHARS: Final = 5000  # §1.1, every model
MAX_IMAGES: Final = 4  # §1.1, every model
_MAX_CLIP_BYTES: Final = 100 * MB  # §6, every model
_MAX_IMAGE_BYTES: Final = 10 * MB  # §6, every model

# §2.1: a completed task's result links are valid for 24 h; after that nothing is left to fetch.
RESULT_LINK_LIFETIME_S: Final = 24 * 3600.0
# §1.2 / §4.1 (the query's 400 `invalid_task_id`): every task id starts with this.
TASK_ID_PREFIX: Final = "task-unified-"
# The documented pattern is `task-unified-<unix seconds>-<8 [a-z0-9]>` [INFERRED]; only the
# prefix is promised, so the rest is merely bounded to characters that are safe in a URL path.
_TASK_ID = re.compile(rf"{re.escape(TASK_ID_PREFIX)}[A-Za-z0-9_-]{{1,100}}")
# Separators a provider puts between an upstream vendor's prefix and the model name.
_MODEL_PREFIX_SEPARATORS: Final = ("/", "-", "_", ":", ".")

# The shortest clip the bot sends. The provider bills anything under a model's minimum as
# the minimum (§6), so shorter clips are accepted and billed clamped; below this floor a
# "clip" is a still or a mistake, not worth a minimum charge. Our rule, not the provider's.
MIN_CLIP_SECONDS: Final = 1.0

# Container durations are whole microseconds (FFmpeg's AV_TIME_BASE) that reach us as floats
# (e.g. 120/24 = 5.000000000001): rounding to the microsecond forgives only that float noise.
_MICROSECONDS: Final = 1_000_000


class EditModel(StrEnum):
    STANDARD = "kling-o1-video-edit"
    FAST = "kling-o1-video-edit-fast"


def whole_seconds_up(duration_s: float) -> int:
    """The provider's rounding (§7: "rounded up"): any part of a second counts, so 3.0005 s
    is 4 s. Taken on the duration in whole microseconds, so float noise never adds a second.
    The simulator (sandbox/evolink_sim/contract.py) reads §7 the same way; a test compares."""
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"invalid duration {duration_s!r}")
    microseconds = round(duration_s * _MICROSECONDS)
    return -(-microseconds // _MICROSECONDS)


def format_limit_mb(limit_bytes: int) -> str:
    """A cap as people write it: ``2_500_000`` → ``"2.5 MB"``."""
    return f"{limit_bytes / MB:g} MB"


def is_task_id(text: str) -> bool:
    """Does `text` look like an EvoLink task id (§1.2)?"""
    return _TASK_ID.fullmatch(text) is not None


def reported_model_matches(reported: str | None, expected: str) -> bool:
    """Does the model a task reports stand for the model we asked for?

    §1.2: the task's ``model`` is the name "actually used", and another model's page shows a
    prefixed upstream name coming back (``doubao-…``), so plain equality is too strict. The
    reported name may therefore carry a vendor prefix (``fal-ai/kling-o1-video-edit``,
    ``upstream-kling-o1-video-edit``), ignoring case; it must end with our name, never
    extend it: ``kling-o1-video-edit-fast`` is another model at another price.
    """
    if not reported:
        return False
    got, want = reported.strip().lower(), expected.strip().lower()
    return got == want or any(got.endswith(sep + want) for sep in _MODEL_PREFIX_SEPARATORS)


def format_seconds_range(low: float, high: float) -> str:
    """A duration range as members read it: ``(3, 10)`` → ``"3–10 s"``."""
    return f"{low:g}–{high:g} s"


@dataclass(frozen=True)
class ModelSpec:
    """One model's limits (§1.1, §6) and price (§7).

    ``min_seconds``/``max_seconds`` are the clip lengths the model is documented to edit and
    the billing clamp: a clip is billed as its length rounded up, within that range. Clips
    outside it are accepted (from ``MIN_CLIP_SECONDS`` up) and billed at the nearer edge (§6).
    """

    name: str
    min_seconds: int
    max_seconds: int
    credits_per_second: float
    max_clip_bytes: int = _MAX_CLIP_BYTES
    max_image_bytes: int = _MAX_IMAGE_BYTES
    max_images: int = MAX_IMAGES
    max_prompt_chars: int = MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"invalid billing range {self.min_seconds}..{self.max_seconds}")
        if self.credits_per_second < 0:
            raise ValueError(f"invalid price {self.credits_per_second!r}")
        limits = (self.max_clip_bytes, self.max_image_bytes, self.max_prompt_chars)
        if min(limits) <= 0 or self.max_images < 0:
            raise ValueError(f"invalid limits for {self.name}")

    def billed_seconds(self, duration_s: float) -> int:
        """:func:`whole_seconds_up` clamped to the billing range ``[min_seconds,
        max_seconds]`` (§6: a shorter clip is billed as the minimum, a longer as the maximum)."""
        return min(self.max_seconds, max(self.min_seconds, whole_seconds_up(duration_s)))

    def credits_for(self, duration_s: float) -> float:
        """Credits the provider charges for a clip of ``duration_s`` seconds."""
        # Rounded so a fast-model clip costs 47.6 credits, not 47.599999999999994.
        return round(self.credits_per_second * self.billed_seconds(duration_s), 4)

    def quota_seconds(self, billed_seconds: int) -> int:
        """What an edit billed ``billed_seconds`` counts against quotas and budgets.

        Quotas are counted in seconds of ``QUOTA_REFERENCE_MODEL``, so a limit buys the same
        credits whichever model a member picks: a second of this model weighs its price over
        the reference's (exact fractions of the prices as written, so no float drift),
        rounded up per edit like the provider rounds (§7)."""
        reference = MODEL_SPECS[QUOTA_REFERENCE_MODEL].credits_per_second
        weight = Fraction(str(self.credits_per_second)) / Fraction(str(reference))
        return math.ceil(billed_seconds * weight)

    @property
    def choice_label(self) -> Text:
        """How members pick this model in /edit (Discord: a choice name is 1–100 chars)."""
        return N_("{model} · {range} · {price} credits/s", model=self.name,
                  range=self.duration_range_text, price=Number.as_written(self.credits_per_second))

    @property
    def duration_range_text(self) -> str:
        """The clip lengths this model edits, as members read them."""
        return format_seconds_range(self.min_seconds, self.max_seconds)

    @property
    def max_clip_text(self) -> str:
        return format_limit_mb(self.max_clip_bytes)

    @property
    def max_image_text(self) -> str:
        return format_limit_mb(self.max_image_bytes)


# Quotas, budgets and moderators' limits count seconds of this model (ModelSpec.quota_seconds).
QUOTA_REFERENCE_MODEL: Final = EditModel.STANDARD

MODEL_SPECS: Final[dict[EditModel, ModelSpec]] = {
    EditModel.STANDARD: ModelSpec(EditModel.STANDARD.value, 3, 10, 12.0),
    EditModel.FAST: ModelSpec(EditModel.FAST.value, 6, 20, 6.8),
}


def seconds_range_of(specs: Sequence[ModelSpec]) -> str:
    """The clip lengths any of `specs` edits, as members read them (e.g. "3–20 s")."""
    return format_seconds_range(min(s.min_seconds for s in specs),
                                max(s.max_seconds for s in specs))


def spec_for(model: str) -> ModelSpec:
    """The rules of the model a job was created for (raises ValueError for an unknown name).

    A job keeps its model's limits and price for its whole life, whatever ``EVOLINK_MODEL``
    says when it is resumed."""
    return MODEL_SPECS[EditModel(model)]
