"""Numbers and names taken from the provider contract (/work/shared/EVOLINK_API.md).

Kept in one place so the simulator's strictness can be checked against the document
line by line; section numbers refer to that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ModelName = Literal["kling-o1-video-edit", "kling-o1-video-edit-fast"]
TaskStatus = Literal["pending", "processing", "completed", "failed"]
Envelope = Literal["current", "legacy"]

TASK_ID_PREFIX: Final = "task-unified-"
MAX_PROMPT_CHARS: Final = 5000  # §1.1
MAX_IMAGES: Final = 4  # §1.1
MAX_CALLBACK_URL_CHARS: Final = 2048  # §5
MAX_VIDEO_BYTES: Final = 100 * 1024 * 1024  # §6
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024  # §6
DURATION_TOLERANCE_S: Final = 0.05  # encoders round the last frame; §6 gives whole seconds
MICROSECONDS: Final = 1_000_000  # FFmpeg's AV_TIME_BASE: container durations are whole µs


@dataclass(frozen=True)
class ModelSpec:
    """Per-model limits (§6) and price (§7)."""

    name: str
    min_seconds: int
    max_seconds: int
    credits_per_second: float

    def billed_seconds(self, duration_s: float) -> int:
        """§7: ceil the input length, then clamp to the billing range.

        §7 states no rounding for O1; the O3 pages say "rounded up", so any part of a second
        is billed (3.0005 s → 4 s, the reading hardest on a client). The length is the
        container duration PyAV reports, a whole number of µs: the ceil is taken on that
        integer, so float noise can neither add nor drop a second.
        """
        return max(self.min_seconds, min(self.max_seconds, whole_seconds_up(duration_s)))

    def credits_for(self, duration_s: float) -> float:
        return round_credits(self.credits_per_second * self.billed_seconds(duration_s))

    def accepts_duration(self, duration_s: float) -> bool:
        low = self.min_seconds - DURATION_TOLERANCE_S
        high = self.max_seconds + DURATION_TOLERANCE_S
        return low <= duration_s <= high


MODELS: Final[dict[str, ModelSpec]] = {
    "kling-o1-video-edit": ModelSpec("kling-o1-video-edit", 3, 10, 12.0),
    "kling-o1-video-edit-fast": ModelSpec("kling-o1-video-edit-fast", 6, 20, 6.8),
}


def whole_seconds_up(duration_s: float) -> int:
    """`ceil` of a duration measured in whole microseconds (AV_TIME_BASE)."""
    microseconds = round(duration_s * MICROSECONDS)
    return -(-microseconds // MICROSECONDS)


def round_credits(value: float) -> float:
    """Avoid 40.800000000000004 in JSON; whole numbers stay whole (60, not 60.0)."""
    rounded = round(value, 4)
    return int(rounded) if float(rounded).is_integer() else rounded


# §4.2 task-level error codes, with the message the simulator reports by default.
TASK_ERROR_MESSAGES: Final[dict[str, str]] = {
    "content_policy_violation": "Content policy violation. The request was blocked by safety "
    "filters.",
    "invalid_parameters": "Invalid parameters: the input is outside the model's limits.",
    "image_processing_error": "Image processing failed: the image could not be fetched or decoded.",
    "image_dimension_mismatch": "The image dimensions do not match the requested ratio.",
    "request_cancelled": "The request was cancelled.",
    "generation_failed_no_content": "Generation finished without producing content.",
    "service_error": "Upstream service error. Please retry in 30-60 seconds.",
    "generation_timeout": "Generation timed out.",
    "resource_exhausted": "Upstream compute resources are exhausted. Please retry later.",
    "quota_exceeded": "Rate, concurrency or quota limit exceeded.",
    "service_unavailable": "Service temporarily unavailable. Please retry in a few minutes.",
    "resource_not_found": "Resource not found.",
    "unknown_error": "Unknown error.",
}
