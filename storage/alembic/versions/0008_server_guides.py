"""The servers the first-steps guide was posted in (cogs/first_steps.py): posted once, also
when the bot joined while it was offline and only learns of the server at start."""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(
        f"CREATE TABLE server_guides (guild_id {'INTEGER' if sqlite else 'BIGINT'} PRIMARY KEY,"
        f" posted_at {'REAL' if sqlite else 'DOUBLE PRECISION'} NOT NULL)"
    )
