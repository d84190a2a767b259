"""The shared provider rate bucket without write-ahead log (PostgreSQL; bench figure 8).

Every provider call of every process takes a token from one row. Logged, each take waited
for its commit's WAL flush while holding that row's lock, so the processes' calls queued
behind each other's disk writes. A token bucket needs no durability: after a server crash
an unlogged table comes back empty, and the first take refills the bucket (one second's
burst at most). SQLite has no such thing and needs none (one process).
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_buckets SET UNLOGGED")
