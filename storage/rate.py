"""Token buckets in the database, shared by every process that uses it (issue 14): the
provider's rate limit holds for all bot processes together.

A take is one statement, one round trip: the bucket's row is refilled for the time since it
was last touched and one token taken, if a whole one is there. The row's lock serialises
concurrent takers, and PostgreSQL re-checks the condition on the row a concurrent taker left.
Times come from the caller's clock: the hosts' clocks are assumed synchronised (NTP).
"""

from __future__ import annotations

from storage.database import POSTGRESQL, Database


class RateBuckets:
    def __init__(self, db: Database) -> None:
        self._db = db
        # The bucket's tokens after refilling, given (capacity, now, per_second).
        smaller = "LEAST" if db.dialect == POSTGRESQL else "MIN"
        self._refilled = (
            f"{smaller}(?, rate_buckets.tokens + (? - rate_buckets.refilled_at) * ?)"
        )

    async def take(self, name: str, *, now: float, per_second: float, capacity: float) -> float:
        """Take one token from bucket `name` (full at first): 0.0 when taken, else how long
        to wait before taking again (the time one token takes to come)."""
        refilled, refill = self._refilled, (capacity, now, per_second)
        rows = await self._db.fetch(
            "INSERT INTO rate_buckets (name, tokens, refilled_at) VALUES (?, ?, ?)"
            f" ON CONFLICT (name) DO UPDATE SET tokens = {refilled} - 1, refilled_at = ?"
            f" WHERE {refilled} >= 1 RETURNING tokens",
            (name, capacity - 1, now, *refill, now, *refill),
        )
        return 0.0 if rows else 1.0 / per_second
