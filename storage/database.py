"""The database engine (SQLite or PostgreSQL through SQLAlchemy Core), its transactions and
its migrations.

Repositories write portable SQL with `?` placeholders; `_statement` turns it into a cached
SQLAlchemy `text()` construct with bound parameters, so one code path serves both engines.
Where the dialects differ (a lease's index hint, a lock), the repository asks `dialect`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import Connection, CursorResult, Row, TextClause, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.schema import MigrationError, current_revision, upgrade

__all__ = ["AsyncConn", "Database", "DbRow", "MigrationError", "SyncConn", "run_in"]

# A result row of any width: `row[0]`, `row.name`, `row._asdict()`.
DbRow: TypeAlias = Row[*tuple[Any, ...]]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
POSTGRESQL = "postgresql"

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def _statement(sql: str) -> TextClause:
    """`?` placeholders become `:p0`, `:p1`, …: SQLAlchemy binds them for either driver."""
    counter = iter(range(10_000))
    return text(_PLACEHOLDER.sub(lambda _: f":p{next(counter)}", sql))


def _params(values: Sequence[Any]) -> dict[str, Any]:
    return {f"p{index}": value for index, value in enumerate(values)}


class SyncConn:
    """One connection inside a transaction, for work that runs all its statements in one go
    (`Database.run`): on PostgreSQL as one greenlet, on SQLite without yielding between
    statements."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect: str = connection.dialect.name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> CursorResult[Any]:
        return self._connection.execute(_statement(sql), _params(params))


def _lock_key(names: tuple[object, ...]) -> int:
    digest = hashlib.blake2b(repr(names).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Rows:
    """The rows of one statement, read like a DB-API cursor."""

    def __init__(self, rows: list[DbRow]) -> None:
        self._rows = rows

    async def fetchone(self) -> DbRow | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[DbRow]:
        return self._rows


class AsyncConn:
    """One connection inside a transaction, one awaited statement at a time."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.dialect: str = connection.dialect.name

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        result = await self._connection.execute(_statement(sql), _params(params))
        return _Rows(list(result.fetchall()) if result.returns_rows else [])

    async def run(self, work: Callable[[SyncConn], T]) -> T:
        return await self._connection.run_sync(lambda connection: work(SyncConn(connection)))

    async def lock(self, *names: object) -> None:
        """Serialise the rest of this transaction with every other one that takes the same
        lock, in any process, until commit. SQLite's BEGIN IMMEDIATE holds the database's
        write lock already; PostgreSQL takes a transaction-scoped advisory lock (a database
        lock, not a process-local one) on a 64-bit key derived from `names`."""
        if self.dialect == POSTGRESQL:
            await self.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(names),))


async def run_in(conn: AsyncConn, work: Callable[[SyncConn], T]) -> T:
    """Run `work` inside the caller's transaction, all its statements in one go."""
    return await conn.run(work)


def _engine_for(target: Path | str, schema: str | None) -> AsyncEngine:
    """SQLite for a path, PostgreSQL (asyncpg) for a `postgresql://` URL."""
    url = str(target)
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        settings = {"search_path": schema} if schema else {}
        return create_async_engine(url, connect_args={"server_settings": settings})
    if "://" in url:
        raise ValueError("DATABASE_URL must be postgresql://…; leave it unset for SQLite")
    if url != ":memory:":
        Path(url).parent.mkdir(parents=True, exist_ok=True)
    # One connection, as before: statements of one process queue for it instead of
    # contending for SQLite's write lock; other processes wait on the busy timeout.
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{url}", pool_size=1, max_overflow=0, pool_timeout=3600
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off so that BEGIN is ours (below).
        dbapi_connection.isolation_level = None  # read by the driver
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON",
                       f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock before the first read: a transaction that reads
        # limits and then writes cannot be overtaken by another process in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The shared engine. Every statement goes through `transaction()`, `read()`, `fetch()`
    or `run()`, each one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ COMMITTED,
    with `SyncConn.lock` where a check and a write must not interleave)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect: str = engine.dialect.name

    @classmethod
    async def open(
        cls, target: Path | str, *, migrate: bool = True, schema: str | None = None
    ) -> Database:
        """`target`: a SQLite file path or a `postgresql://` URL; `schema` (PostgreSQL) is
        the search path, so several databases can share one server."""
        database = cls(_engine_for(target, schema))
        try:
            await database.ping()
            if migrate:
                await database.migrate()
        except BaseException:
            await database.close()
            raise
        return database

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        """A trivial query: raises if the database cannot answer."""
        await self.fetch("SELECT 1")

    async def schema_version(self) -> str | None:
        """The Alembic revision the database is at (None before any migration)."""
        async with self._engine.connect() as connection:
            return await connection.run_sync(current_revision)

    async def migrate(self) -> list[str]:
        """Apply pending migrations; returns the revisions applied (empty when up to date)."""
        try:
            async with self._engine.begin() as connection:
                applied = await connection.run_sync(upgrade)
        except DBAPIError as exc:
            raise MigrationError(f"migration failed: {exc.orig}") from exc
        for revision in applied:
            log.info("migration applied revision=%s", revision)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConn]:
        """One transaction, rolled back on any exception (cancellation included)."""
        async with self._engine.connect() as connection:
            await connection.begin()
            try:
                yield AsyncConn(connection)
            except BaseException:
                await asyncio.shield(connection.rollback())
                raise
            await connection.commit()

    # Reads get the same consistent, serialised view as writes.
    read = transaction

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[DbRow]:
        """One statement and its rows (a SELECT, or a write `… RETURNING`), committed."""
        async with self._engine.begin() as connection:
            result = await connection.execute(_statement(sql), _params(params))
            return list(result.fetchall()) if result.returns_rows else []

    async def run(self, work: Callable[[SyncConn], T]) -> T:
        """`work` in one transaction (rolled back if it raises), all its statements in one go:
        it must not block on anything but the database."""
        async with self._engine.begin() as connection:
            return await connection.run_sync(lambda sync: work(SyncConn(sync)))
