"""How many seconds the provider bills for a clip (DESIGN §4, EVOLINK_API §6)."""

from __future__ import annotations

import math

# Container durations are floats built from timestamps (e.g. 120/24 = 5.000000000001); a
# millisecond of slack keeps float noise from billing a whole extra second.
_FLOAT_SLACK_S = 1e-3


def billed_seconds(duration_s: float, min_s: int, max_s: int) -> int:
    """``ceil(duration)`` clamped to the model's billing range ``[min_s, max_s]``."""
    if not 0 < min_s <= max_s:
        raise ValueError(f"invalid billing range {min_s}..{max_s}")
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"invalid duration {duration_s!r}")
    return min(max_s, max(min_s, math.ceil(duration_s - _FLOAT_SLACK_S)))
