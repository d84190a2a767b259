from __future__ import annotations

from bot.jobs.config import ScheduleConfig
from bot.jobs.scheduling import (
    expected_duration,
    first_poll_delay,
    next_poll_delay,
    poll_error_delay,
    result_link_deadline,
    retry_delay,
)

CONFIG = ScheduleConfig(first_poll_max_s=60, min_interval_s=5, max_interval_s=60)


def test_first_poll_at_about_a_third_of_the_estimate_capped() -> None:
    assert 9 <= first_poll_delay(30, CONFIG, callbacks=False) <= 11
    assert 54 <= first_poll_delay(600, CONFIG, callbacks=False) <= 66


def test_with_callbacks_polling_is_only_a_late_safety_net() -> None:
    assert first_poll_delay(300, CONFIG, callbacks=True) >= 300


def polls_until(duration: float, estimate: float) -> int:
    elapsed, polls = first_poll_delay(estimate, CONFIG, callbacks=False), 1
    while elapsed < duration:
        elapsed += next_poll_delay(estimate, elapsed, CONFIG, callbacks=False)
        polls += 1
    return polls


def test_a_300_second_task_needs_at_most_eleven_polls() -> None:
    assert polls_until(300, 300) <= 11


def test_an_overdue_task_is_polled_at_a_bounded_cadence() -> None:
    assert 4.5 <= next_poll_delay(300, 310, CONFIG, callbacks=False) <= 5.5
    assert next_poll_delay(300, 3000, CONFIG, callbacks=False) <= 66


def test_retry_backoff_grows_and_is_capped() -> None:
    config = ScheduleConfig(retry_base_s=5, retry_max_s=900)
    assert 4.5 <= retry_delay(1, config) <= 5.5
    assert 18 <= retry_delay(3, config) <= 22
    assert retry_delay(30, config) <= 990


def test_a_poll_error_backs_off_by_the_errors_in_a_row_not_the_polls_so_far() -> None:
    config = ScheduleConfig(retry_base_s=5, retry_max_s=900)
    assert 4.5 <= poll_error_delay(1, None, config) <= 5.5  # the first error, however late
    assert 18 <= poll_error_delay(3, None, config) <= 22
    assert poll_error_delay(1, 60.0, config) == 60.0  # the provider's Retry-After is a floor


def test_the_result_link_is_tried_until_a_margin_before_its_24_hours() -> None:
    config = ScheduleConfig(result_link_margin_s=3600)
    assert result_link_deadline(1000.0, config) == 1000.0 + 23 * 3600


def test_a_counting_down_estimate_keeps_a_300_second_task_under_twelve_calls() -> None:
    """The provider reports the time still to go at each poll; one create + polls ≤ 12."""
    duration = 300.0
    elapsed = first_poll_delay(duration, CONFIG, callbacks=False)
    estimate: float | None = duration
    polls = 1
    while elapsed < duration:
        estimate = expected_duration(elapsed, duration - elapsed, estimate)
        elapsed += next_poll_delay(estimate, elapsed, CONFIG, callbacks=False)
        polls += 1
    assert 1 + polls <= 12


def test_expected_duration_reads_the_estimate_as_time_remaining() -> None:
    assert expected_duration(100, 200, 300) == 300
    assert expected_duration(100, None, 250) == 250
    assert expected_duration(400, 0, 300) == 400
