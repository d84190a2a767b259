"""Retry policy of the EvoLink client (DESIGN.md §4), expressed as tenacity pieces."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_random_exponential

from .errors import EvolinkError, ProviderUnreachable, RateLimited

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def get_may_retry(exc: BaseException) -> bool:
    """GETs are idempotent: retry anything transient (429, 5xx, no answer)."""
    return isinstance(exc, EvolinkError) and exc.retryable


def create_may_retry(exc: BaseException) -> bool:
    """Retry a create only when it provably created nothing (EVOLINK_API.md §4.1).

    That is a 429, or ProviderUnreachable, which the client raises on create only for
    failures before the request was sent (see client._BEFORE_SEND_ERRORS). Every failure
    after sending (5xx, timeout, dropped connection, unreadable 2xx) arrives here as
    SubmissionOutcomeUnknown and is never retried: the task may exist and be billed.
    """
    return isinstance(exc, RateLimited | ProviderUnreachable)


class RetryAfterAwareWait(wait_base):
    """Full-jitter exponential backoff; a provider's Retry-After is a floor, capped."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._jitter = wait_random_exponential(multiplier=initial, max=maximum)
        self._maximum = maximum

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = float(self._jitter(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, EvolinkError) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self._maximum))
        return delay


def _log_retry(method: str, path: str, attempts: int) -> Callable[[RetryCallState], None]:
    def before_sleep(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        status = exc.status if isinstance(exc, EvolinkError) else None
        logger.warning(
            "EvoLink %s %s failed (%s, status=%s); attempt %d/%d, retrying in %.2fs",
            method,
            path,
            type(exc).__name__,
            status,
            retry_state.attempt_number,
            attempts,
            retry_state.upcoming_sleep,
        )

    return before_sleep


def build_retrying(
    *,
    method: str,
    path: str,
    attempts: int,
    may_retry: Callable[[BaseException], bool],
    backoff_initial: float,
    backoff_max: float,
    sleep: Sleep,
) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=RetryAfterAwareWait(backoff_initial, backoff_max),
        retry=retry_if_exception(may_retry),
        before_sleep=_log_retry(method, path, attempts),
        sleep=sleep,
        # Surface the typed EvolinkError, not tenacity's RetryError wrapper.
        reraise=True,
    )
