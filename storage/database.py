"""One aiosqlite connection, its pragmas, numbered migrations and transactions."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
BUSY_TIMEOUT_MS = 5000


T = TypeVar("T")


class MigrationError(RuntimeError):
    pass


async def run_in(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` with the plain sqlite3 connection on aiosqlite's worker thread.

    Every aiosqlite call is one round trip to that thread (~0.1 ms of CPU: queue, thread
    wake-up, event-loop wake-up), which is several times the cost of a small indexed
    statement. Hot paths therefore run all their statements in one such trip. This uses
    aiosqlite's own queue (`Connection._execute`, the primitive behind every public call),
    so it is serialised with everything else sent to the connection.
    """
    result: T = await conn._execute(work, conn._conn)  # type: ignore[no-untyped-call]
    return result


def _atomically(work: Callable[[sqlite3.Connection], T], raw: sqlite3.Connection) -> T:
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(raw)
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return result


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order, numbered without gaps."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    for expected, (version, name, _) in enumerate(found, start=1):
        if version != expected:
            raise MigrationError(f"migration {name} is out of sequence: expected {expected:04d}")
    return found


class Database:
    """The shared connection. Every statement goes through `transaction()`, `read()`,
    `fetch()` or `run()`.

    aiosqlite runs one connection on one worker thread; without the lock, two
    coroutines could interleave statements inside each other's transaction.
    `fetch()` and `run()` cost one round trip to that thread; `transaction()` and
    `read()` one per statement and fetch (plus BEGIN and COMMIT).
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str, *, migrate: bool = True) -> Database:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        connection.row_factory = aiosqlite.Row
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA foreign_keys=ON")
            await connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA synchronous=NORMAL")
            database = cls(connection)
            if migrate:
                await database.migrate()
        except BaseException:
            await connection.close()
            raise
        return database

    async def close(self) -> None:
        async with self._lock:
            await self._connection.close()

    async def ping(self) -> None:
        """A trivial query: raises if the database cannot answer."""
        async with self.read() as conn:
            await conn.execute("SELECT 1")

    async def schema_version(self) -> int:
        async with self.read() as conn:
            cursor = await conn.execute("PRAGMA user_version")
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied (empty when up to date)."""
        migrations = load_migrations()
        current = await self.schema_version()
        if current > len(migrations):
            raise MigrationError(
                f"database schema version {current} is newer than this code "
                f"({len(migrations)}); upgrade the bot before using this database"
            )
        applied = []
        async with self._lock:
            for version, name, sql in migrations[current:]:
                # executescript commits any open transaction first, so BEGIN/COMMIT
                # live inside the script and a failure leaves the version unchanged.
                script = f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
                try:
                    await self._connection.executescript(script)
                except Exception as exc:
                    await self._connection.execute("ROLLBACK")
                    raise MigrationError(f"migration {name} failed: {exc}") from exc
                log.info("migration applied name=%s", name)
                applied.append(name)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (cancellation included)."""
        async with self._lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                await asyncio.shield(self._connection.execute("ROLLBACK"))
                raise
            await self._connection.execute("COMMIT")

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One statement and its rows (a SELECT, or a write `… RETURNING`), one round trip.

        A single statement is atomic on its own: the connection is in autocommit mode
        outside `transaction()`.
        """
        async with self._lock:
            return list(await self._connection.execute_fetchall(sql, params))

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` inside BEGIN IMMEDIATE … COMMIT (rolled back if it raises), one round trip.

        `work` runs on the database thread with the plain sqlite3 connection: it must not
        block on anything but SQLite. If the caller is cancelled meanwhile, the work still
        completes (and commits) on that thread, like a write that had just finished.
        """
        async with self._lock:
            return await run_in(self._connection, lambda raw: _atomically(work, raw))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._connection
