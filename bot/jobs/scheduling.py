"""When to ask the provider again: pure functions, so the cadence is testable without a clock."""

from __future__ import annotations

import random

from bot.evolink import RESULT_LINK_LIFETIME_S
from bot.jobs.config import ScheduleConfig

DEFAULT_ESTIMATE_S = 300.0
# With callbacks on, polls are only a safety net for a dropped callback.
CALLBACK_SAFETY_FACTOR = 1.5


def _jitter(delay: float, rng: random.Random | None = None) -> float:
    """±10 %, so jobs submitted together do not poll in lockstep."""
    return delay * (0.9 + 0.2 * (rng or random).random())


def first_poll_delay(
    estimated_time: float | None, config: ScheduleConfig, *, callbacks: bool
) -> float:
    estimate = estimated_time if estimated_time and estimated_time > 0 else DEFAULT_ESTIMATE_S
    if callbacks:
        return max(config.min_interval_s, estimate * CALLBACK_SAFETY_FACTOR)
    return _jitter(min(max(estimate / 3, config.min_interval_s), config.first_poll_max_s))


def expected_duration(
    elapsed: float, reported_remaining: float | None, previous: float | None
) -> float | None:
    """The task's expected total duration from submission.

    The provider's estimated_time counts down: it is the time still to go. Read as a fixed
    total, a task would look overdue half-way through and be polled at the minimum interval.
    """
    if reported_remaining is None:
        return previous
    return elapsed + max(0.0, reported_remaining)


def next_poll_delay(
    estimated_time: float | None, elapsed: float, config: ScheduleConfig, *, callbacks: bool
) -> float:
    """Poll half-way to the expected finish; near or past it, back off from the minimum."""
    if callbacks:
        return max(config.max_interval_s * 2, config.min_interval_s)
    estimate = estimated_time if estimated_time and estimated_time > 0 else DEFAULT_ESTIMATE_S
    remaining = estimate - elapsed
    if remaining > 0:
        delay = remaining / 2
    else:
        # Overdue: stretch the interval as the overrun grows (5 s, then ~10 % of the overrun).
        delay = -remaining / 10
    return _jitter(min(max(delay, config.min_interval_s), config.max_interval_s))


def retry_delay(attempt: int, config: ScheduleConfig) -> float:
    """Exponential backoff with jitter for persisted retries (downloads, deliveries, polls)."""
    return _jitter(min(config.retry_base_s * 2 ** max(attempt - 1, 0), config.retry_max_s))


def poll_error_delay(errors: int, retry_after: float | None, config: ScheduleConfig) -> float:
    """Back off by the consecutive failed polls (not the total), at least as long as the
    provider asked (Retry-After)."""
    return max(retry_delay(errors, config), retry_after or 0.0)


def result_link_deadline(completed_at: float, config: ScheduleConfig) -> float:
    """The last moment to try the provider's result link: its lifetime from the completion
    we saw (the provider's was earlier), minus a margin."""
    return completed_at + RESULT_LINK_LIFETIME_S - config.result_link_margin_s
