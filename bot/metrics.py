"""Prometheus metrics for the bot, served at GET /metrics.

`Metrics` owns its registry instead of using prometheus-client's process-global
default one: tests build as many as they like, and nothing leaks between them.
Scrape-time values (jobs by state, event-loop lag) come from callables, so the
numbers are read when Prometheus asks rather than kept in sync by hand.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

PREFIX = "kling"
# Completion → delivery is seconds when Discord is healthy and hours when it is not
# (delivery retries with backoff), so the buckets span both.
DELIVERY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
SCRAPE_REFRESH_TIMEOUT_S = 2.0

JobCounts = Callable[[], Mapping[str, int]]
K = TypeVar("K", bound=str)


class _JobsByStateCollector:
    """Reads the job counts at scrape time; every known state is reported, zeros too,
    so a series does not vanish (and break rate() and alerts) when its count hits 0."""

    def __init__(self, name: str, source: JobCounts, states: Iterable[str]) -> None:
        self._name = name
        self._source = source
        self._states = tuple(states)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, "Jobs by state.", labels=["state"])

    def describe(self) -> Iterator[Metric]:
        # Lets the registry detect name clashes without calling the source.
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        counts = dict.fromkeys(self._states, 0)
        try:
            counts.update({str(state): int(n) for state, n in self._source().items()})
        except Exception:
            # One broken source must not fail the whole scrape.
            log.exception("job counts unavailable for metrics")
            counts = {}
        for state in sorted(counts):
            family.add_metric([state], counts[state])
        yield family


class BalanceLike(Protocol):
    @property
    def remaining(self) -> float | None: ...


class Metrics:
    """Every metric the bot exports, in one registry of its own."""

    def __init__(
        self,
        *,
        job_counts: JobCounts = dict,
        job_states: Iterable[str] = (),
        loop_lag: Callable[[], float] = lambda: 0.0,
        process_metrics: bool = True,
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        registry.register(_JobsByStateCollector(f"{PREFIX}_jobs", job_counts, job_states))
        self.provider_calls = Counter(
            f"{PREFIX}_provider_calls",
            "EvoLink API calls by endpoint and HTTP status (or error kind).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.delivery_delay = Histogram(
            f"{PREFIX}_delivery_delay_seconds",
            "Seconds from the provider completing a task to the result posted in Discord.",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.billed_seconds = Counter(
            f"{PREFIX}_billed_seconds",
            "Video seconds billed by the provider (settled jobs).",
            registry=registry,
        )
        self.loop_lag = Gauge(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop last woke up; a blocked loop shows here first.",
            registry=registry,
        )
        self.loop_lag.set_function(loop_lag)
        self.provider_credits = Gauge(
            f"{PREFIX}_provider_credits_remaining",
            "Credits left on the provider account at the last check (NaN: unknown or "
            "uncapped).",
            registry=registry,
        )
        self.media_served_bytes = Counter(
            f"{PREFIX}_media_served_bytes",
            "Bytes of rehosted inputs and archived results sent by the web server.",
            registry=registry,
        )
        if process_metrics:
            # Memory, CPU and open files of this process (no-op where /proc is absent).
            ProcessCollector(registry=registry)

    def watch_provider_balance(self, reading: Callable[[], BalanceLike | None]) -> None:
        def remaining() -> float:
            current = reading()
            if current is None or current.remaining is None:
                return math.nan
            return current.remaining

        self.provider_credits.set_function(remaining)

    def record_provider_call(self, endpoint: str, status: int | str) -> None:
        """`endpoint` must be a route template such as "GET /v1/tasks/{id}", never a
        concrete URL: each distinct label value is a new time series."""
        self.provider_calls.labels(endpoint=endpoint, status=str(status)).inc()

    def observe_delivery_delay(self, seconds: float) -> None:
        self.delivery_delay.observe(max(0.0, seconds))  # clock steps must not go negative

    def record_billed_seconds(self, seconds: float) -> None:
        self.billed_seconds.inc(seconds)

    def record_media_served(self, nbytes: int) -> None:
        self.media_served_bytes.inc(nbytes)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class JobCountsSnapshot(Generic[K]):
    """The latest job counts, refreshed before each scrape.

    Collectors run synchronously, the database is async: the handler awaits
    `refresh()` first, and the collector reads the snapshot by calling it.
    """

    def __init__(self, fetch: Callable[[], Awaitable[Mapping[K, int]]]) -> None:
        self._fetch = fetch
        self._counts: dict[str, int] = {}

    async def refresh(self) -> None:
        counts = await self._fetch()
        self._counts = {str(state): n for state, n in counts.items()}

    def __call__(self) -> dict[str, int]:
        return dict(self._counts)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_metrics_handler(
    metrics: Metrics, *, before_render: Callable[[], Awaitable[object]] | None = None
) -> Handler:
    """A GET /metrics handler; `before_render` (e.g. `JobCountsSnapshot.refresh`) runs first."""

    async def metrics_handler(request: web.Request) -> web.Response:
        if before_render is not None:
            try:
                async with asyncio.timeout(SCRAPE_REFRESH_TIMEOUT_S):
                    await before_render()
            except Exception:
                # A busy database yields a slightly stale scrape, not a failed one.
                log.warning("metrics refresh failed; serving the previous values", exc_info=True)
        body, content_type = metrics.render()
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    return metrics_handler


def count_media_bytes(
    metrics: Metrics, prefix: str = "/m/"
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An `on_response_prepare` signal handler counting media bytes as they are sent.

    FileResponse works out the length itself (whole file or the requested range), and
    it is known only when headers go out: the signal sees it there, so serve_media
    needs no change. A client that disconnects early is still counted in full.
    """

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if (
            request.method == "GET"
            and request.path.startswith(prefix)
            and response.status in (200, 206)
            and response.content_length
        ):
            metrics.record_media_served(response.content_length)

    return on_prepare
