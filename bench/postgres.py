"""The PostgreSQL server figures 8 and 9 run on, and a throwaway schema in it.

The server is `DATABASE_URL`, else `KLING_TEST_DATABASE_URL` (what the tests use), else the
machines' usual 127.0.0.1:5432 database `test`. Without one the figures are skipped with a
notice; with one, each run gets its own schema, dropped at the end whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_LIMIT_S = 5.0
URL_VARIABLES = ("DATABASE_URL", "KLING_TEST_DATABASE_URL")


def server_url() -> str:
    for name in URL_VARIABLES:
        if value := os.environ.get(name, "").strip():
            return value
    return DEFAULT_URL


def shown(url: str) -> str:
    """The URL without its password, for notices."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"


async def unreachable(url: str) -> str | None:
    """Why the server cannot be used (None: it can)."""
    try:
        connection = await asyncio.wait_for(asyncpg.connect(url), CONNECT_LIMIT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, ValueError) as error:
        return (
            f"no PostgreSQL reachable at {shown(url)} ({type(error).__name__}); set "
            f"{' or '.join(URL_VARIABLES)} to run these figures"
        )
    await connection.close()
    return None


@dataclass(frozen=True)
class Schema:
    url: str
    name: str
    connection: asyncpg.Connection  # the benchmark's own, with the schema as search path


@asynccontextmanager
async def throwaway_schema(url: str, prefix: str) -> AsyncIterator[Schema]:
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        connection = await asyncpg.connect(url, server_settings={"search_path": name})
        try:
            yield Schema(url, name, connection)
        finally:
            await asyncio.shield(connection.close())
    finally:
        await asyncio.shield(admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        await asyncio.shield(admin.close())
