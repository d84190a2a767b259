"""The provider balance as it was read over time: what `/kling-admin limits show` compares
today's balance with (issue 15: the credit balance trend).

Every successful `GET /v1/credits` of every process is one row; rows older than the longest
trend window (plus a margin) are deleted as new ones come, so the table stays a few thousand
rows at the bot's read rate (one every few minutes and after billing, at most one per 30 s).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.database import Database, SyncConn

# A reading older than this is never looked at: the longest trend window is 7 days.
KEEP_S = 8 * 86400.0

_LATEST_AT_OR_BEFORE = (
    "SELECT remaining FROM balance_readings WHERE at <= ? ORDER BY at DESC LIMIT 1"
)


class BalanceHistory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, *, at: float, remaining: float | None) -> None:
        """One reading (None: the account has no cap), and forget what no window reaches."""

        def work(conn: SyncConn) -> None:
            conn.execute(
                "INSERT INTO balance_readings (at, remaining) VALUES (?, ?)", (at, remaining)
            )
            conn.execute("DELETE FROM balance_readings WHERE at < ?", (at - KEEP_S,))

        await self._db.run(work)

    async def remaining_at(self, moments: Sequence[float]) -> list[float | None]:
        """For each moment, the balance the last reading at or before it saw; None where no
        reading is that old (or the account had no cap then). One round trip."""

        def work(conn: SyncConn) -> list[float | None]:
            found: list[float | None] = []
            for moment in moments:
                rows = conn.rows(_LATEST_AT_OR_BEFORE, (moment,))
                found.append(rows[0][0] if rows else None)
            return found

        return await self._db.run(work)
