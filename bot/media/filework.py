"""Threads of our own for blocking file work, so it never queues behind anything else.

Writes, hashing, fsync, renames, folder changes and sniff reads can stall on a busy disk, so
they leave the event loop; but on the loop's default executor they would also wait behind
whatever other code puts there (libraries, slow jobs) — one such backlog made a file write
wait a minute. :class:`FileWork` is a small pool owned by ``Services.running()`` and handed to
whoever touches files; the default executor is left to the libraries that use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Enough for a few downloads writing at once plus housekeeping; file work is I/O-bound.
FILE_WORK_THREADS: Final = 4


class FileWork:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    @classmethod
    @contextlib.contextmanager
    def running(cls, threads: int = FILE_WORK_THREADS) -> Iterator[FileWork]:
        executor = ThreadPoolExecutor(threads, thread_name_prefix="file-work")
        try:
            yield cls(executor)
        finally:
            # Everything that submits work has stopped by now; don't block the loop on it.
            executor.shutdown(wait=False)
