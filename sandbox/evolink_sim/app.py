"""aiohttp application wiring: public API, result files and the `/_sim/` control API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .control import ControlApi
from .routes import PublicApi

if TYPE_CHECKING:
    from .simulator import EvolinkSimulator

# Generous for a JSON body (5000-char prompt + URLs) yet small enough that a runaway
# client gets EvoLink's 413 instead of the simulator buffering megabytes.
MAX_BODY_BYTES = 1024 * 1024


def build_app(sim: EvolinkSimulator) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes(PublicApi(sim).routes())
    app.add_routes(ControlApi(sim).routes())
    return app
