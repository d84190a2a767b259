"""Baseline: the schema of numbered migrations 0001–0004.

SQLite applies the numbered files the database lacks (by `PRAGMA user_version`), so a
database made before Alembic upgrades in place; PostgreSQL gets `postgresql_baseline.sql`,
the same schema with its own types (BIGINT snowflakes, DOUBLE PRECISION times, identity keys).
"""

from importlib import resources

from alembic import op

from storage.schema import MigrationError, legacy_migrations, statements

revision = "0004"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        sql = resources.files("storage.migrations").joinpath("postgresql_baseline.sql")
        for statement in statements(sql.read_text("utf-8")):
            op.execute(statement)
        return
    migrations = legacy_migrations()
    current = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if current > len(migrations):
        raise MigrationError(
            f"database schema version {current} is newer than this code "
            f"({len(migrations)}); upgrade the bot before using this database"
        )
    for version, _name, script in migrations[current:]:
        for statement in statements(script):
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")
