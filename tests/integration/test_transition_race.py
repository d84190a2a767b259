"""A state change and its history row are one step, also when two processes race on
PostgreSQL (READ COMMITTED): the history never records a move from a state the job had
already left."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.database import Database
from storage.jobs import JobRepository
from storage.models import JobState
from storage.transitions import transition_in
from tests.conftest import DatabaseLocation
from tests.integration.test_storage import NOW, new_job

# PostgreSQL only: SQLite's BEGIN IMMEDIATE serialises every writer already.
pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


async def _blocked_on_a_lock(location: DatabaseLocation) -> None:
    """Until some statement on the test server waits for a row lock (an observable event
    of the server's own; nothing else in this schema takes one)."""
    assert isinstance(location.target, str)
    admin = await asyncpg.connect(location.target)
    try:
        async with asyncio.timeout(10):
            while True:
                waiting = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%jobs%'"
                )
                if waiting:
                    return
                await asyncio.sleep(0.01)  # the server announces no lock wait: look again
    finally:
        await admin.close()


async def test_a_move_racing_another_records_where_the_job_really_came_from(
    database_location: DatabaseLocation, db: Database
) -> None:
    jobs = JobRepository(db)
    job = await jobs.create(new_job(), now=NOW)
    async with db.transaction() as conn:
        # One process starts checking the files (not committed yet) ...
        await transition_in(conn, job.id, JobState.FETCHING, expected={JobState.RECEIVED},
                            now=NOW)
        # ... while another refuses the edit, from either state (as the engine's _reject).
        refusing = asyncio.create_task(jobs.transition(
            job.id, JobState.REJECTED, expected={JobState.RECEIVED, JobState.FETCHING},
            now=NOW + 1,
        ))
        await _blocked_on_a_lock(database_location)
    await refusing

    moves = [(e.from_state, e.to_state) for e in await jobs.events(job.id)]
    assert moves == [
        (None, JobState.RECEIVED),
        (JobState.RECEIVED, JobState.FETCHING),
        (JobState.FETCHING, JobState.REJECTED),
    ]
