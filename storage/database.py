"""The database (SQLite or PostgreSQL through SQLAlchemy Core), its transactions and its
migrations.

Repositories write portable SQL with `?` placeholders; `_statement` turns it into a cached
SQLAlchemy `text()` construct with bound parameters, so one code path serves both engines.
Where the dialects differ (a lease's index hint, a lock), the repository asks `dialect`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import Connection, CursorResult, Row, TextClause, TextualSelect, column, text
from sqlalchemy.exc import DBAPIError

from storage.engines import Backend, PostgresBackend, SqliteBackend
from storage.schema import MigrationError, current_revision, upgrade

__all__ = ["AsyncConn", "Database", "DbRow", "MigrationError", "SyncConn", "run_in"]

# A result row of any width: `row[0]`, `row.name`, `row._asdict()`.
DbRow: TypeAlias = Row[*tuple[Any, ...]]

log = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
# What a PostgreSQL `DATABASE_URL` starts with; anything else is refused.
POSTGRESQL_URLS = ("postgresql://", "postgres://")
# A schema the bot may be told to use (DATABASE_SCHEMA): it becomes the connection's
# search_path unquoted, so only names PostgreSQL takes as they are (lowercase, ≤ 63 bytes).
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def _statement(sql: str, columns: tuple[str, ...]) -> TextClause | TextualSelect:
    """`?` placeholders become `:p0`, `:p1`, …: SQLAlchemy binds them for either driver.

    With `columns` (the statement's result columns, in order), SQLAlchemy knows the result's
    layout in advance and reuses it; otherwise it rebuilds it from every result (~3 µs a
    column), which on a 40-column job row costs more than SQLite's work."""
    counter = iter(range(10_000))
    clause = text(_PLACEHOLDER.sub(lambda _: f":p{next(counter)}", sql))
    return clause.columns(*(column(name) for name in columns)) if columns else clause


# PostgreSQL's text cannot hold NUL (asyncpg refuses the whole statement); SQLite's can. Text
# from members or the provider is stored with U+FFFD in its place, on both engines alike.
_NUL, _NUL_STANDIN = "\x00", "\ufffd"


def _params(values: Sequence[Any]) -> dict[str, Any]:
    # Inline, not a helper per value: this runs for every parameter of every statement.
    return {
        f"p{index}": value.replace(_NUL, _NUL_STANDIN)
        if type(value) is str and _NUL in value else value
        for index, value in enumerate(values)
    }


def _lock_key(names: tuple[object, ...]) -> int:
    digest = hashlib.blake2b(repr(names).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SyncConn:
    """A connection inside a transaction, for work that runs all its statements in one go
    (`Database.run`, `run_in`)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect: str = connection.dialect.name

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, columns: tuple[str, ...] = ()
    ) -> CursorResult[Any]:
        return self._connection.execute(_statement(sql, columns), _params(params))

    def rows(
        self, sql: str, params: Sequence[Any] = (), *, columns: tuple[str, ...] = ()
    ) -> list[DbRow]:
        result = self.execute(sql, params, columns=columns)
        return list(result.fetchall()) if result.returns_rows else []

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`sql` once for each of `rows` (a batch insert): one call to the driver."""
        self._connection.execute(_statement(sql, ()), [_params(row) for row in rows])


class _Rows:
    """The rows of one statement, read like a DB-API cursor."""

    def __init__(self, rows: list[DbRow]) -> None:
        self._rows = rows

    async def fetchone(self) -> DbRow | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[DbRow]:
        return self._rows


class AsyncConn:
    """A transaction held across awaits (`Database.transaction`), one statement a trip."""

    def __init__(self, call: Callable[..., Any], dialect: str) -> None:
        self._call = call
        self.dialect = dialect

    async def execute(
        self, sql: str, params: Sequence[Any] = (), *, columns: tuple[str, ...] = ()
    ) -> _Rows:
        return _Rows(await self.run(lambda conn: conn.rows(sql, params, columns=columns)))

    async def run(self, work: Callable[[SyncConn], T]) -> T:
        result: T = await self._call(lambda connection: work(SyncConn(connection)))
        return result

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


class Database:
    """The shared database. Every statement goes through `transaction()`, `read()`,
    `fetch()` or `run()`, each one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ
    COMMITTED, with `AsyncConn.lock` where a check and a write must not interleave).
    `fetch()` and `run()` cost one round trip; `transaction()` one per statement."""

    def __init__(self, backend: Backend, schema: str | None = None) -> None:
        self._backend = backend
        self._schema = schema
        self.dialect: str = backend.dialect

    @classmethod
    async def open(
        cls, target: Path | str, *, migrate: bool = True, schema: str | None = None
    ) -> Database:
        """`target`: a SQLite file path or a `postgresql://` URL; `schema` (PostgreSQL) is
        the search path, so several databases can share one server."""
        url = str(target)
        backend: Backend
        if schema is not None and not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"not a schema name the bot can use: {schema!r}")
        if url.startswith(POSTGRESQL_URLS):
            backend = PostgresBackend(url, schema)
        elif "://" in url:
            raise ValueError("DATABASE_URL must be postgresql://…; leave it unset for SQLite")
        elif schema is not None:
            raise ValueError("a schema is for PostgreSQL; a SQLite database has none")
        else:
            backend = await SqliteBackend.open(target)
        database = cls(backend, schema)
        try:
            await database.ping()
            if migrate:
                await database.migrate()
        except BaseException:
            await database.close()
            raise
        return database

    async def close(self) -> None:
        await self._backend.close()

    async def ping(self) -> None:
        """A trivial query: raises if the database cannot answer."""
        await self.fetch("SELECT 1")

    async def schema_version(self) -> str | None:
        """The Alembic revision the database is at (None before any migration)."""
        return await self._backend.run(current_revision)

    async def migrate(self) -> list[str]:
        """Apply pending migrations; returns the revisions applied (empty when up to date)."""
        try:
            applied = await self._backend.run(lambda conn: upgrade(conn, self._schema))
        except DBAPIError as exc:
            raise MigrationError(f"migration failed: {exc.orig}") from exc
        for revision in applied:
            log.info("migration applied revision=%s", revision)
        return applied

    @asynccontextmanager
    async def listen(
        self, channel: str, on_message: Callable[[str], None],
        on_reconnect: Callable[[], None] | None = None,
    ) -> AsyncIterator[None]:
        """While inside, `on_message(payload)` hears every `notify(channel, …)` of every
        process (PostgreSQL LISTEN; a dropped connection is opened again, then
        `on_reconnect()`). SQLite serves one process, which hears nothing."""
        if isinstance(self._backend, PostgresBackend):
            async with self._backend.listen(channel, on_message, on_reconnect):
                yield
        else:
            yield

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on `channel` (PostgreSQL NOTIFY, at commit)."""
        if self.dialect == POSTGRESQL:
            await self.fetch("SELECT pg_notify(?, ?)", (channel, payload))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConn]:
        """One transaction, rolled back on any exception (cancellation included)."""
        async with self._backend.transaction() as call:
            yield AsyncConn(call, self.dialect)

    # Reads get the same consistent, serialised view as writes.
    read = transaction

    async def fetch(
        self, sql: str, params: Sequence[Any] = (), *, columns: tuple[str, ...] = ()
    ) -> list[DbRow]:
        """One statement and its rows (a SELECT, or a write `… RETURNING`), committed;
        `columns` names its result columns in order, when known (see `_statement`)."""
        return await self.run(lambda conn: conn.rows(sql, params, columns=columns))

    async def run(self, work: Callable[[SyncConn], T]) -> T:
        """`work` in one transaction (rolled back if it raises), all its statements in one go:
        it must not block on anything but the database."""
        return await self._backend.run(lambda connection: work(SyncConn(connection)))
