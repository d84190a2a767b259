"""Bot-side timestamps for figure 1, so the emulator's share of a latency can be told apart.

`install()` wraps two discord.py calls in the current process and, at exit, writes one JSON
record per interaction to ``$BENCH_TIMINGS``:

* ``parsed``: INTERACTION_CREATE decoded by the gateway reader (perf_counter seconds);
* ``defer_called`` / ``defer_done``: the handler called ``interaction.response.defer()``
  and the callback's HTTP answer came back.

``defer_called − parsed`` is the bot's own work before it acknowledges (dispatch, checks,
option conversion, the handler); ``defer_done − defer_called`` is the HTTP round trip
to the emulator, which includes any wait for the emulator's event loop.

``python -m bench.instrumented_bot`` runs the real bot (``bot.__main__.main(["run"])``,
unchanged) with the wrappers installed; the baseline bot installs them too.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

_records: dict[str, dict[str, float]] = {}


def install() -> None:
    path = os.environ.get("BENCH_TIMINGS")
    if not path:
        return
    import discord.interactions
    import discord.state

    parse = discord.state.ConnectionState.parse_interaction_create
    defer = discord.interactions.InteractionResponse.defer

    def parse_interaction_create(self: Any, data: dict[str, Any]) -> None:
        _records[str(data["id"])] = {"parsed": time.perf_counter()}
        parse(self, data)

    async def timed_defer(self: Any, **kwargs: Any) -> Any:
        record = _records.setdefault(str(self._parent.id), {})
        record["defer_called"] = time.perf_counter()
        try:
            return await defer(self, **kwargs)
        finally:
            record["defer_done"] = time.perf_counter()

    discord.state.ConnectionState.parse_interaction_create = parse_interaction_create  # type: ignore[method-assign]
    discord.interactions.InteractionResponse.defer = timed_defer  # type: ignore[method-assign]
    atexit.register(lambda: Path(path).write_text(json.dumps(_records)))


def load(path: Path) -> dict[str, dict[str, float]]:
    try:
        data: dict[str, dict[str, float]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data
