"""What the bot costs while it handles one input, measured from outside its process.

Memory: the kernel's own peak of the bot's resident set (`VmHWM` in `/proc/<pid>/status`).
Writing `5` to `/proc/<pid>/clear_refs` resets that peak to the current RSS (Linux ≥ 4.0,
proc(5)), so a case measures its own peak however short the spike, and an earlier case's
spike does not hide a later one.

Event-loop lag: a thread of this test process times `GET /livez` on the bot's metrics
listener (loopback, beside `/metrics`; the public one does not serve it), one request after
another with a 10 ms pause, for as long as the input is being handled. Both listeners run on
the bot's one event loop, so a request that arrives while the loop is blocked waits until
it runs again: a stall of S seconds shows up as a request taking at least S − pause. The
timing includes loopback and aiohttp's own handling (~1–3 ms): it can only overstate the
lag, never hide it. `/livez` touches nothing but the loop; `/healthz` also pings the
database on its thread, which a busy moment of SQLite's writer made take 270 ms while the
loop itself was idle (the bot's own lag monitor read 0.0 ms). The bot's `/metrics` gauge was
not used: it keeps only the latest of its 0.5 s samples, and a stall shorter than its sleep
never shows there. The `event_loop_lag_ms` that `/livez` reports (the bot's own monitor) is
kept beside each sample for the failure message.

CPU starvation: on a loaded machine a request can also be slow because the bot's loop thread
was runnable but had no CPU, which is the machine's load, not the bot blocking its loop. The
failure message says how long that thread waited for a CPU during the case (the run-queue
delay in `/proc/<pid>/schedstat`, kernel Documentation/scheduler/sched-stats.rst), so a
slow answer can be told apart: with four busy processes on two cores the loop thread waited
up to 90 ms in total during the gzip bomb, and the slowest health answer took 38 ms.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PACE_S = 0.01  # the pause between two health requests: the sampler's resolution
REQUEST_TIMEOUT_S = 5.0


def _status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise LookupError(f"{field_name} missing from /proc/{pid}/status")


def _run_queue_wait_s(pid: int) -> float:
    """Seconds the process's main thread (the bot's event loop) has waited for a CPU."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


class ProcessWatch:
    """One process's peak memory growth and CPU wait from `start()` to `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._baseline_bytes = 0
        self._waited_s = 0.0

    def start(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # peak := current RSS
        self._baseline_bytes = _status_kib(self.pid, "VmRSS") * 1024
        self._waited_s = _run_queue_wait_s(self.pid)

    def stop(self, health: list[HealthSample]) -> Cost:
        return Cost(
            rss_growth_bytes=_status_kib(self.pid, "VmHWM") * 1024 - self._baseline_bytes,
            loop_cpu_wait_s=_run_queue_wait_s(self.pid) - self._waited_s,
            health=health,
        )


@dataclass
class HealthSample:
    seconds: float  # how long the request took, from this side
    status: int  # 0: no answer within REQUEST_TIMEOUT_S
    reported_lag_ms: float | None  # the bot's own last loop-lag sample, from the body


@dataclass
class HealthSampler:
    """Times `/livez` from a thread until `stop()`; never touches the test's event loop."""

    port: int
    samples: list[HealthSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        self._get(connection)  # connect (and warm up) before the case begins
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name="livez-sampler", daemon=True
        )
        self._thread.start()

    def stop(self) -> list[HealthSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.samples

    def _run(self, connection: http.client.HTTPConnection) -> None:
        try:
            while True:  # at least one sample, however quick the case
                self.samples.append(self._get(connection))
                if self._stop.wait(PACE_S):  # the sampling pace, not a synchronisation
                    break
        finally:
            connection.close()

    def _get(self, connection: http.client.HTTPConnection) -> HealthSample:
        began = time.perf_counter()
        try:
            connection.request("GET", "/livez")
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # reconnects on the next request
            return HealthSample(time.perf_counter() - began, 0, None)
        took = time.perf_counter() - began
        try:
            reported = float(json.loads(body)["event_loop_lag_ms"])
        except (ValueError, KeyError, TypeError):
            reported = None
        return HealthSample(took, response.status, reported)


@dataclass(frozen=True)
class Cost:
    """What handling one input cost the bot."""

    rss_growth_bytes: int
    loop_cpu_wait_s: float  # runnable without a CPU: the machine's load, not the bot's
    health: list[HealthSample]

    @property
    def worst_health_s(self) -> float:
        return max((s.seconds for s in self.health), default=0.0)

    @property
    def unhealthy(self) -> list[HealthSample]:
        return [s for s in self.health if s.status != 200]

    def describe(self) -> str:
        reported = [s.reported_lag_ms for s in self.health if s.reported_lag_ms is not None]
        return (
            f"RSS grew {self.rss_growth_bytes / 1e6:.1f} MB; {len(self.health)} health "
            f"requests, slowest {self.worst_health_s * 1000:.1f} ms, "
            f"{len(self.unhealthy)} not answered 200; the bot's own last lag sample peaked "
            f"at {max(reported, default=0.0):.1f} ms; its loop thread waited "
            f"{self.loop_cpu_wait_s * 1000:.1f} ms in all for a CPU"
        )
