"""Several processes on one database (issue 14): job leases with an owner, and the
provider's rate limit as one token bucket for all of them (storage/rate.py).

`leased_by` names the process holding the job's current step; `lease_until` is when that
lease ends unless renewed (the due time it pushed out, `next_poll_at` or
`next_delivery_at`, equals it while the lease is held).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    time_type = "REAL" if op.get_bind().dialect.name == "sqlite" else "DOUBLE PRECISION"
    op.execute("ALTER TABLE jobs ADD COLUMN leased_by TEXT")
    op.execute(f"ALTER TABLE jobs ADD COLUMN lease_until {time_type}")
    op.execute(
        "CREATE TABLE rate_buckets (name TEXT PRIMARY KEY,"
        f" tokens {time_type} NOT NULL, refilled_at {time_type} NOT NULL)"
    )
