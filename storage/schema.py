"""Migrations: Alembic revisions in `storage/alembic/versions`, run by `Database.migrate`.

The first revision is the baseline: the schema that numbered `.sql` files built before
Alembic (SQLite kept their count in `PRAGMA user_version`). On SQLite it applies whichever
of those files the database lacks, so a database from before Alembic upgrades in place;
on PostgreSQL it creates the same schema with PostgreSQL's types.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# The PostgreSQL advisory lock every migration takes first (any 64-bit number no other
# lock of the bot uses; theirs are hashes of names): processes starting together migrate
# one after the other, and the later ones find the schema up to date.
MIGRATION_LOCK_KEY = 0x6B6C696E675F6D67  # "kling_mg"


class MigrationError(RuntimeError):
    pass


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("alembic")))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows: what `upgrade` brings a database to."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "storage/alembic/versions holds no revision"
    return head


def upgrade(connection: Connection, schema: str | None = None) -> list[str]:
    """Bring the schema to the newest revision inside the caller's transaction; returns the
    revisions applied, oldest first. `schema` (PostgreSQL's DATABASE_SCHEMA, already the
    connection's search path) is created first if missing, like the tables it will hold."""
    if connection.dialect.name == "postgresql":
        # Held until the caller's transaction ends; each later statement sees what the
        # process that held it before committed (READ COMMITTED).
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    if schema is not None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    config = _config(connection)
    scripts = ScriptDirectory.from_config(config)
    before = current_revision(connection)
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        raise MigrationError(
            f"database schema revision {before} is unknown to this code: "
            "upgrade the bot before using this database"
        ) from exc
    after = current_revision(connection)
    steps = [] if after is None else list(scripts.iterate_revisions(after, before))
    return [script.revision for script in reversed(steps)]


def legacy_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every numbered SQLite migration, in order, without gaps."""
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


def statements(script: str) -> list[str]:
    """The statements of a plain SQL script (comments dropped; no `;` inside literals)."""
    without_comments = re.sub(r"--[^\n]*", "", script)
    return [part.strip() for part in without_comments.split(";") if part.strip()]
