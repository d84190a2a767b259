"""Moving to PostgreSQL: copy every table of this bot's SQLite database into an empty
PostgreSQL database, keeping ids (`python -m bot migrate-sqlite-to-postgres`).

Both databases must be at this code's schema revision (the target is migrated first), so
their tables and columns are the same; the copy checks that anyway before it trusts a
name read from the file. It runs in one PostgreSQL transaction: a failure leaves the target
as empty as it was. The SQLite side is read in one `BEGIN IMMEDIATE` transaction, so a bot
still writing to it waits (or the copy fails) rather than leaving half a job behind.
"""

from __future__ import annotations

import asyncio
import graphlib
import sqlite3
from pathlib import Path

from pydantic import BaseModel

from storage.database import POSTGRESQL, AsyncConn, Database, SyncConn
from storage.schema import head_revision

# Rows read from SQLite and written to PostgreSQL per round trip.
BATCH_ROWS = 1000
# Bookkeeping, not the bot's data: each side has its own (as SQLite its sqlite_* tables).
_NOT_COPIED = "alembic_version"


class CopyRefused(RuntimeError):
    """The copy did not start: the message says why and what to do."""


class SourceTable(BaseModel):
    name: str
    columns: list[str]
    references: set[str]  # tables its foreign keys point at


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_tables(conn: SyncConn) -> list[SourceTable]:
    """The source's tables, each after the tables its foreign keys need."""
    names = [row[0] for row in conn.rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != ?", (_NOT_COPIED,)
    )]
    tables = {
        name: SourceTable(
            name=name,
            columns=[row.name for row in conn.rows(f"PRAGMA table_info({_quoted(name)})")],
            references={row[2] for row in conn.rows(
                f"PRAGMA foreign_key_list({_quoted(name)})"
            )} - {name},  # a self-reference (a re-run's parent) is met by copying in id order
        )
        for name in names
    }
    order = graphlib.TopologicalSorter({t.name: t.references for t in tables.values()})
    return [tables[name] for name in order.static_order()]


def _check_target(conn: SyncConn, tables: list[SourceTable]) -> None:
    """Refuse unless the target has exactly the source's tables and columns, all empty."""
    target: dict[str, list[str]] = {}
    for table_name, column_name in conn.rows(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name != ?", (_NOT_COPIED,)
    ):
        target.setdefault(table_name, []).append(column_name)
    source = {table.name: table.columns for table in tables}
    differ = sorted(
        name for name in source.keys() | target.keys()
        if sorted(source.get(name, [])) != sorted(target.get(name, []))
    )
    if differ:
        raise CopyRefused(
            f"the SQLite and PostgreSQL databases differ in {', '.join(differ)}: the target "
            "must be an empty database (or schema) of this bot only"
        )
    holding = [table.name for table in tables if conn.rows(
        f"SELECT 1 FROM {_quoted(table.name)} LIMIT 1"
    )]
    if holding:
        raise CopyRefused(
            f"the PostgreSQL database already holds data (in {', '.join(holding)}); "
            "copy only into an empty database"
        )


async def _copy_table(reader: AsyncConn, writer: AsyncConn, table: SourceTable) -> int:
    """Copies in rowid order (ids ascending), a batch per round trip; returns the rows."""
    columns = ", ".join(_quoted(column) for column in table.columns)
    select = (
        f"SELECT rowid, {columns} FROM {_quoted(table.name)}"
        " WHERE rowid > ? ORDER BY rowid LIMIT ?"
    )
    placeholders = ", ".join("?" for _ in table.columns)
    insert = f"INSERT INTO {_quoted(table.name)} ({columns}) VALUES ({placeholders})"
    copied, last_rowid = 0, -(2**63)
    while True:
        batch = await (await reader.execute(select, (last_rowid, BATCH_ROWS))).fetchall()
        if not batch:
            return copied
        rows = [tuple(row)[1:] for row in batch]

        def write(conn: SyncConn, rows: list[tuple[object, ...]] = rows) -> None:
            conn.execute_many(insert, rows)

        await writer.run(write)
        copied += len(rows)
        last_rowid = batch[-1][0]


def _reset_identities(conn: SyncConn, issued: dict[str, int]) -> None:
    """Each identity sequence continues after the highest id SQLite ever issued (its
    AUTOINCREMENT never reuses the id of a deleted row; neither should PostgreSQL)."""
    for table_name, column_name in conn.rows(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ):
        [(highest,)] = conn.rows(
            f"SELECT COALESCE(MAX({_quoted(column_name)}), 0) FROM {_quoted(table_name)}"
        )
        last = max(int(highest), issued.get(table_name, 0))
        # setval(…, 1, false): the next id is 1, as in a table that never had a row.
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(?, ?), ?, ?)",
            (_quoted(table_name), column_name, max(last, 1), last > 0),
        )


def _issued_ids(conn: SyncConn) -> dict[str, int]:
    return {name: int(seq) for name, seq in conn.rows("SELECT name, seq FROM sqlite_sequence")}


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every table of `source` (SQLite) into `target` (PostgreSQL, empty), in one
    target transaction; returns the rows copied per table, in copying order."""
    if source.dialect == POSTGRESQL or target.dialect != POSTGRESQL:
        raise CopyRefused("the copy goes from a SQLite database to a PostgreSQL one")
    head = head_revision()
    revision = await source.schema_version()
    if revision != head:
        raise CopyRefused(
            f"the SQLite database is at schema revision {revision or 'none'}, this bot's is "
            f"{head}: run this version of the bot once on it to upgrade it first"
        )
    if await target.schema_version() != head:
        raise CopyRefused("run `python -m bot migrate` on the PostgreSQL database first")
    async with source.read() as reader, target.transaction() as writer:
        tables = await reader.run(_sqlite_tables)
        await writer.run(lambda conn: _check_target(conn, tables))
        copied = {table.name: await _copy_table(reader, writer, table) for table in tables}
        issued = await reader.run(_issued_ids)
        await writer.run(lambda conn: _reset_identities(conn, issued))
    return copied


async def copy_sqlite_file(path: Path, url: str) -> dict[str, int]:
    """Open the bot's SQLite file at `path` (never creating one) and the PostgreSQL database
    at `url` (migrated to this code's schema), then `copy_database`."""
    if not await asyncio.to_thread(path.is_file):
        raise CopyRefused(f"no SQLite database at {path}")
    try:
        source = await Database.open(path, migrate=False)
    except sqlite3.DatabaseError as error:
        raise CopyRefused(f"{path} is not a SQLite database ({error})") from None
    try:
        target = await Database.open(url)
        try:
            return await copy_database(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
