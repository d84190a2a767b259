"""All SQL lives here: the connection, migrations and repositories returning pydantic models."""
