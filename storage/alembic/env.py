"""Alembic runs on the connection `storage.schema.upgrade` hands it, inside its transaction."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
