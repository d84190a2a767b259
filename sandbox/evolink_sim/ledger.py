"""Account credits: reserve at create, settle on completion, release on failure (§7)."""

from __future__ import annotations

from typing import Any

from .contract import round_credits


class InsufficientCredits(Exception):
    """The balance cannot cover the task's reservation (create answers 402)."""


class CreditLedger:
    def __init__(self, total: float) -> None:
        self.total = float(total)  # everything ever topped up
        self.used = 0.0  # billed for completed tasks
        self.reserved = 0.0  # held for tasks still running

    @property
    def remaining(self) -> float:
        """What `GET /v1/credits` reports: the balance only moves when a task is billed."""
        return round_credits(self.total - self.used)

    def can_reserve(self, amount: float) -> bool:
        return self.total - self.used - self.reserved >= amount - 1e-9

    def reserve(self, amount: float) -> None:
        self.reserved += amount

    def adjust(self, old: float, new: float) -> None:
        """The input was probed: swap the worst-case hold for the real price."""
        self.reserved += new - old

    def settle(self, reserved: float, billed: float) -> None:
        self.reserved -= reserved
        self.used += billed

    def release(self, reserved: float) -> None:
        self.reserved -= reserved

    def credits_json(self) -> dict[str, Any]:
        """Shape documented for `GET /v1/credits` (EVOLINK_API.md §3)."""
        remaining = self.remaining
        used = round_credits(self.used)
        return {
            "success": True,
            "message": "ok",
            "data": {
                "token": {
                    "remaining_credits": remaining,
                    "used_credits": used,
                    "unlimited_credits": False,
                },
                "user": {"remaining_credits": remaining, "used_credits": used},
            },
        }
