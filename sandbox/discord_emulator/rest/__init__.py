"""REST routes under ``/api/v10``, split by area."""

from __future__ import annotations

from . import channels, guilds, interactions, meta
from .common import API_PREFIX, RouteTable

TABLES: tuple[RouteTable, ...] = (meta.table, channels.table, guilds.table, interactions.table)

__all__ = ["API_PREFIX", "TABLES"]
