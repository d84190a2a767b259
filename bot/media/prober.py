"""Run media probes in a small pool of worker processes with a memory cap and a time limit.

Decoders parse attacker-supplied bytes; in the bot's own process a bomb could take all memory
or hold a thread for minutes. Here each probe runs in a worker (``pebble.ProcessPool``) whose
address space is capped with ``RLIMIT_AS``, and is killed after a wall-clock timeout. A worker
that runs out of memory, crashes or times out is replaced; the probe then fails with
:class:`ProbeFailed`, which the caller turns into a refusal.

Workers are started with "spawn" (a fresh interpreter: never a fork of the bot's threaded
asyncio process), import the probing code, and only then cap their memory, so the cap is
what a probe may add. They are the bot's own children: stopping the pool leaves nothing
running. A new worker costs about half a second of CPU, paid at start and after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import multiprocessing
import os
import resource
from collections.abc import AsyncIterator, Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Final, ParamSpec, TypeVar

import pebble

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# What a worker imports before its memory is capped: the decoders' libraries are not probes.
_PRELOAD: Final = ("bot.media.probe", "bot.media.cut")
# A worker that met a MemoryError exits with this code instead of going on in a state the
# allocator may not have recovered from; the pool starts a fresh one.
_OUT_OF_MEMORY_EXIT: Final = 86
# Even healthy workers are replaced now and then, so fragmentation never accumulates.
_PROBES_PER_WORKER: Final = 200


class ProbeFailed(Exception):
    """The probe did not finish within the pool's limits; ``why`` is for the logs only."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class ProbeLimits:
    workers: int = 2
    # Address space a worker may add to what it starts with (the loaded decoders).
    memory_bytes: int = 512 * 1024 * 1024
    timeout_s: float = 15.0
    # Cutting a clip may decode and encode its part again: slower than a probe.
    cut_timeout_s: float = 120.0


class Prober:
    """Owns the worker pool; :meth:`running` starts, warms and finally stops it."""

    def __init__(self, limits: ProbeLimits) -> None:
        self.limits = limits
        self._pool = self._new_pool()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, limits: ProbeLimits) -> AsyncIterator[Prober]:
        """Start and warm the pool (off the loop: the first start imports PyAV and Pillow in
        a new interpreter), so the first member's probe finds its workers waiting."""
        prober = cls(limits)
        try:
            await asyncio.to_thread(prober.start)
            yield prober
        finally:
            await asyncio.to_thread(prober.close)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args)`` in a worker; its exceptions propagate, limits raise ProbeFailed.

        ``function`` and its arguments must pickle (a module-level function, plain data).
        Cancelling the caller kills the worker running it.
        """
        return await self.run_within(self.limits.timeout_s, function, *args, **kwargs)

    async def run_within(
        self, timeout_s: float, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`run` with a time limit of its own (e.g. ``limits.cut_timeout_s``)."""
        failure: tuple[BaseException, str]
        for attempt in (1, 2):
            if not self._pool.active:  # a worker died while idle: pebble gives up the pool
                await asyncio.to_thread(self._replace_pool)
            future = self._pool.schedule(
                _within_limits, (function, *args), kwargs, timeout=timeout_s
            )
            try:
                return await asyncio.wrap_future(future)
            except TimeoutError as exc:
                failure = exc, f"timed out after {timeout_s:g} s"
            except pebble.ProcessExpired as exc:
                failure = exc, _exit_reason(exc.exitcode)
            except BrokenProcessPool as exc:
                # Not this probe's doing: another worker died while idle. Try once more.
                log.warning("probe pool broken (%s); starting a new one", exc)
                failure = exc, "the probe pool broke twice"
                if attempt == 1:
                    continue
            cause, why = failure
            log.warning("probe %s failed: %s", getattr(function, "__name__", "?"), why)
            raise ProbeFailed(why) from cause
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the workers (killing any running probe) and wait until they are gone."""
        _shut_down(self._pool)

    def start(self) -> None:
        """Blocking: start every worker and wait until each has answered once."""
        for future in [self._pool.schedule(os.getpid) for _ in range(self.limits.workers)]:
            future.result()

    def _replace_pool(self) -> None:
        old, self._pool = self._pool, self._new_pool()
        _shut_down(old)
        self.start()

    def _new_pool(self) -> pebble.ProcessPool:
        return pebble.ProcessPool(
            max_workers=self.limits.workers,
            max_tasks=_PROBES_PER_WORKER,
            initializer=_prepare_worker,
            initargs=(_PRELOAD, self.limits.memory_bytes),
            context=multiprocessing.get_context("spawn"),
        )


def _shut_down(pool: pebble.ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join()


def stop_helper_processes() -> None:
    """Call once every pool is closed, just before the process exits.

    The pool's locks start multiprocessing's resource tracker, a child that would otherwise
    outlive the bot for a moment (an orphan in its process group); stopping it waits for it.
    """
    gc.collect()  # closed pools' locks are released while the tracker still runs
    # No public API: ``_stop`` is what the standard library's own tests use (3.8+).
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    stop = getattr(tracker, "_stop", None)
    if stop is not None:
        stop()


def _exit_reason(exitcode: int | None) -> str:
    if exitcode == _OUT_OF_MEMORY_EXIT:
        return "ran out of memory"
    if exitcode is not None and exitcode < 0:
        return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _prepare_worker(preload: tuple[str, ...], extra_bytes: int) -> None:
    """Worker initializer: import ``preload``, then cap the address space at what is mapped
    now plus ``extra_bytes``."""
    for module in preload:
        importlib.import_module(module)
    limit = _mapped_bytes() + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:  # first field: total program size, in pages
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: no baseline to add to (RLIMIT_AS is advisory there anyway)
        return 0


def _within_limits(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    try:
        return function(*args, **kwargs)
    except MemoryError:
        os._exit(_OUT_OF_MEMORY_EXIT)
