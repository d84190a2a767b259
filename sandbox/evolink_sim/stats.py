"""`GET /_sim/stats`: counters a benchmark or demo reads without walking every task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulator import EvolinkSimulator


def simulator_stats(sim: EvolinkSimulator) -> dict[str, Any]:
    """Counters a benchmark or demo can read without walking every task itself."""
    now = sim.clock.now()
    by_status: dict[str, int] = {}
    for task in sim.tasks.values():
        status = "expired" if task.expired(now) else task.status_at(now)
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "create_attempts": sim.create_attempts,
        "tasks": len(sim.tasks),
        "tasks_by_status": by_status,
        "callbacks_sent": sum(t.counts["callback"] for t in sim.tasks.values()),
        "gets": sum(t.counts["get"] for t in sim.tasks.values()),
        "credits": {
            "total": sim.ledger.total,
            "remaining": sim.ledger.remaining,
            "used": sim.ledger.used,
            "reserved": sim.ledger.reserved,
        },
        "clock": {"provider_now": now, "time_scale": sim.time_scale},
        "error_envelope": sim.error_envelope,
        "queued_scripts": len(sim.queued_scripts),
        "echo_usage": sim.echo_usage,
        "pending_faults": {**sim.pending_faults(), "result_outages": sim.results.outages()},
    }
