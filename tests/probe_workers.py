"""Functions the probe-sandbox tests run inside probe workers.

A worker imports the module of the function it is given after its memory limit is set, so
these live apart from the tests: importing a test module would import its harness (the whole
bot, matplotlib and numpy), whose shared libraries do not fit a strict worker's limit.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def hang() -> None:
    """Never finishes on its own (waits on an event nobody sets)."""
    threading.Event().wait()


def announce_then_hang(announce: Path) -> None:
    """Say which process is busy, then never finish on its own."""
    announce.write_text(str(os.getpid()))
    hang()
