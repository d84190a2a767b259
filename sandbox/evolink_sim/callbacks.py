"""Callback delivery as §5 describes it: POST the task-query body, 10 s per attempt,
retries 1 s / 2 s / 4 s after each failure (4 attempts at most), any 2xx ends delivery.

No signature or auth header is sent: EvoLink documents none, and a receiver that relies on
one would break against the real service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from .netguard import is_loopback_url
from .tasks import CallbackAttempt

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)


async def deliver_callback(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    delivery: int,
    timeout_s: float,
    retry_delays: Sequence[float],
    sleep: Callable[[float], Awaitable[None]],
    now: Callable[[], float],
    record: Callable[[CallbackAttempt], None],
) -> bool:
    """Try to deliver one callback; return True once a receiver answered 2xx.

    `sleep` waits provider seconds, so retry gaps follow the simulator's time_scale;
    the per-attempt timeout is real time because it bounds a real socket.
    """
    if not is_loopback_url(url):
        # Accepted at create time (it is valid for EvoLink), but this process only ever
        # talks to loopback, so the delivery is skipped rather than sent off-machine.
        log.warning("callback to non-loopback host not sent: %s", url)
        return False
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    for attempt in range(1, len(retry_delays) + 2):
        status: int | None = None
        error: str | None = None
        try:
            async with session.post(
                url, json=payload, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
        record(CallbackAttempt(delivery, attempt, status, error, now()))
        if status is not None and 200 <= status < 300:
            return True
        if attempt <= len(retry_delays):
            await sleep(retry_delays[attempt - 1])
    log.info("callback to %s gave up after %d attempts", url, len(retry_delays) + 1)
    return False


async def run_deliveries(
    copies: int,
    deliver_once: Callable[[int], Awaitable[bool]],
) -> None:
    """Deliver `copies` times in a row (2 for "duplicate" mode, 0 for "drop")."""
    for delivery in range(1, copies + 1):
        try:
            await deliver_once(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the simulator's other tasks
            log.exception("callback delivery %d crashed", delivery)
