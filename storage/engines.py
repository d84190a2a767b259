"""The two ways a transaction reaches its database, behind one shape (`Backend`).

PostgreSQL: SQLAlchemy's async engine on asyncpg; work written against a plain (sync)
SQLAlchemy `Connection` runs as one greenlet (`run_sync`).

SQLite: one aiosqlite connection, and a sync SQLAlchemy engine over that connection's own
`sqlite3` handle. Work is shipped to aiosqlite's thread whole, so a transaction of several
statements costs one round trip to that thread (~0.1 ms of CPU each: queue, wake-ups), not
one per statement plus BEGIN and COMMIT; the async engine on aiosqlite cost about ten times
today's CPU per tracker call. `aiosqlite.Connection._execute` is the primitive behind every
public aiosqlite call, so the work is serialised with everything else sent there.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 5000
# The LISTEN connection, once lost, is opened again after this, doubling up to the maximum.
LISTEN_RETRY_FIRST_S = 0.5
LISTEN_RETRY_MAX_S = 30.0

class Backend(Protocol):
    dialect: str

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction (rolled back if it raises), in one go."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Callable[..., Any]]:
        """A transaction held across awaits; yields a `call(fn)` that runs `fn` in it."""
        ...

    async def close(self) -> None: ...


class PostgresBackend:
    dialect = "postgresql"

    def __init__(self, url: str, schema: str | None) -> None:
        settings = {"search_path": schema} if schema else {}
        self._url, self._server_settings = url, settings
        self._engine: AsyncEngine = create_async_engine(
            "postgresql+asyncpg://" + url.split("://", 1)[1],
            connect_args={"server_settings": settings},
        )

    async def run(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Callable[..., Any]]:
        async with self._engine.connect() as connection:
            await connection.begin()
            try:
                yield connection.run_sync
            except BaseException:
                await asyncio.shield(connection.rollback())
                raise
            await connection.commit()

    @asynccontextmanager
    async def listen(
        self, channel: str, on_message: Callable[[str], None],
        on_reconnect: Callable[[], None] | None = None,
    ) -> AsyncIterator[None]:
        """Call `on_message(payload)` for each NOTIFY on `channel`, from any process, on a
        connection of its own (a pooled one would stop listening when returned).

        The first connection must succeed (a start-up without it fails loudly). When it drops
        later (a server restart, the network), it is opened again with backoff; meanwhile
        no hint arrives and every job is still polled on its schedule. `on_reconnect` is
        called once it listens again (hints sent meanwhile are lost)."""
        first = await self._listening(channel, on_message)
        keeper = asyncio.create_task(
            self._keep_listening(first, channel, on_message, on_reconnect),
            name=f"listen-{channel}",
        )
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _listening(
        self, channel: str, on_message: Callable[[str], None]
    ) -> tuple[Any, asyncio.Event]:
        connection = await asyncpg.connect(self._url, server_settings=self._server_settings)
        lost = asyncio.Event()

        def heard(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            on_message(payload)

        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(channel, heard)
        except BaseException:
            await asyncio.shield(connection.close())
            raise
        return connection, lost

    async def _keep_listening(
        self, first: tuple[Any, asyncio.Event], channel: str,
        on_message: Callable[[str], None], on_reconnect: Callable[[], None] | None,
    ) -> None:
        connection, lost = first
        try:
            while True:
                await lost.wait()
                log.warning("LISTEN connection lost channel=%s: reconnecting", channel)
                delay = LISTEN_RETRY_FIRST_S
                while True:
                    try:
                        connection, lost = await self._listening(channel, on_message)
                        break
                    except (OSError, asyncpg.PostgresError) as error:
                        log.warning("LISTEN reconnect failed channel=%s retry_in=%.1fs: %s",
                                    channel, delay, error)
                        await asyncio.sleep(delay)  # backoff while the server is away
                        delay = min(delay * 2, LISTEN_RETRY_MAX_S)
                log.info("LISTEN connection back channel=%s", channel)
                if on_reconnect is not None:
                    on_reconnect()
        finally:
            await asyncio.shield(connection.close())

    async def close(self) -> None:
        await self._engine.dispose()


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        # aiosqlite runs one connection on one worker thread; without the lock, two
        # coroutines could interleave statements inside each other's transaction.
        self._lock = asyncio.Lock()
        raw: sqlite3.Connection = connection._conn
        self._engine: Engine = create_engine(
            "sqlite://", creator=lambda: raw, poolclass=StaticPool, pool_reset_on_return=None
        )

        @event.listens_for(self._engine, "begin")
        def _begin(_connection: Connection) -> None:
            # IMMEDIATE takes the write lock before the first read: a transaction that
            # reads limits and then writes cannot be overtaken by another process.
            # Straight to the driver: SQLAlchemy's statement machinery would double the cost.
            raw.execute("BEGIN IMMEDIATE")

    @classmethod
    async def open(cls, path: Path | str) -> SqliteBackend:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            for pragma in ("journal_mode=WAL", "foreign_keys=ON",
                           f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
                await connection.execute(f"PRAGMA {pragma}")
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        result: T = await self._connection._execute(fn)  # type: ignore[no-untyped-call]
        return result

    def _atomically(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """If the caller is cancelled meanwhile, the work still completes (and commits) on
        the database thread, like a write that had just finished."""
        async with self._lock:
            return await self._on_thread(lambda: self._atomically(work))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Callable[..., Any]]:
        async with self._lock:
            connection = await self._on_thread(self._engine.connect)
            try:
                await self._on_thread(connection.begin)

                async def call(fn: Callable[[Connection], T]) -> T:
                    return await self._on_thread(lambda: fn(connection))

                try:
                    yield call
                except BaseException:
                    await asyncio.shield(self._on_thread(connection.rollback))
                    raise
                await self._on_thread(connection.commit)
            finally:
                await asyncio.shield(self._on_thread(connection.close))

    async def close(self) -> None:
        async with self._lock:
            await self._on_thread(self._engine.dispose)
            await self._connection.close()
