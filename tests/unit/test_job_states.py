"""The job state machine: TRANSITIONS is complete, and no job can get stuck."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace
from typing import Any, get_type_hints

from bot.jobs.recovery import Recovery
from storage.models import (
    ACTIVE_STATES,
    DELIVERY_STATES,
    MODERATOR_TRANSITIONS,
    REFETCH_TRANSITIONS,
    REPOST_TRANSITIONS,
    TERMINAL_STATES,
    TRACKED_STATES,
    TRANSITIONS,
    Job,
    JobChanges,
    JobState,
    sources_of,
)

# Left where a restart finds it until its task is adopted (callback, `jobs attach`), a
# moderator fails it, or the tracker's housekeeping settles it as a loss at its deadline.
MODERATOR_RESOLVES = {JobState.SUBMISSION_UNKNOWN}


def reachable(start: JobState) -> set[JobState]:
    seen, queue = {start}, deque([start])
    while queue:
        for following in TRANSITIONS[queue.popleft()]:
            if following not in seen:
                seen.add(following)
                queue.append(following)
    return seen


def resumed_states() -> set[JobState]:
    """The states `Recovery.resume()` picks up after a restart."""
    asked: list[JobState] = []

    async def in_states(states: list[JobState], *, owned_only: bool) -> list[Any]:
        asked.extend(states)
        return []

    async def sweep_incoming(keep: set[int]) -> int:
        return 0

    deps = SimpleNamespace(
        jobs=SimpleNamespace(in_states=in_states), clock=lambda: 0.0,
        store=SimpleNamespace(sweep_incoming=sweep_incoming),
    )
    engine = SimpleNamespace(
        deps=deps, config=SimpleNamespace(shared_jobs=False), wake_scheduler=lambda: None
    )
    asyncio.run(Recovery(engine).resume())  # type: ignore[arg-type]
    return set(asked)


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobState)
    for following in TRANSITIONS.values():
        assert following <= set(JobState)


def test_every_state_is_reachable_from_received() -> None:
    assert reachable(JobState.RECEIVED) == set(JobState)


def test_terminal_states_are_final() -> None:
    assert TERMINAL_STATES == {JobState.DELIVERED, JobState.FAILED, JobState.REJECTED}
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset(), state
        assert state.is_terminal


def test_the_only_way_back_is_a_moderators_repost_into_the_delivery_queue() -> None:
    assert set(REPOST_TRANSITIONS) <= TERMINAL_STATES
    assert JobState.REJECTED not in REPOST_TRANSITIONS  # refused jobs have nothing to post
    for following in REPOST_TRANSITIONS.values():
        assert following == DELIVERY_STATES
    assert sources_of(JobState.ARCHIVED) == {JobState.DOWNLOADING, *REPOST_TRANSITIONS}


def test_a_moderators_refetch_puts_a_failed_job_back_to_fetching_its_result() -> None:
    assert dict(REFETCH_TRANSITIONS) == {JobState.FAILED: {JobState.DOWNLOADING}}
    assert sources_of(JobState.DOWNLOADING) == {
        JobState.SUBMITTED, JobState.ARCHIVED, *REFETCH_TRANSITIONS
    }
    # Only moderators go back from a finished job: the bot's own table never does.
    for table in MODERATOR_TRANSITIONS:
        assert set(table) <= TERMINAL_STATES
        for source, following in table.items():
            assert not following & TRANSITIONS[source]


def test_every_unfinished_state_has_a_way_out() -> None:
    for state in set(JobState) - TERMINAL_STATES:
        assert reachable(state) & TERMINAL_STATES, f"{state} can never finish"
        assert not TRANSITIONS[state] & {state}, f"{state} moves to itself"


def test_a_restart_leaves_no_job_behind() -> None:
    """Every unfinished state is resumed at start, or waits for a moderator who fails it."""
    unfinished = set(JobState) - TERMINAL_STATES
    resumed = resumed_states()
    assert resumed <= unfinished
    assert unfinished - resumed == MODERATOR_RESOLVES
    for state in MODERATOR_RESOLVES:
        assert {JobState.SUBMITTED, JobState.FAILED} <= TRANSITIONS[state]


def test_a_task_id_is_attached_only_while_the_submission_is_unconfirmed() -> None:
    """SUBMITTED is entered from the create's own answer or by adopting a task found later;
    both states the adoption guard accepts, and nothing else."""
    assert sources_of(JobState.SUBMITTED) == {JobState.SUBMITTING, JobState.SUBMISSION_UNKNOWN}


def test_named_state_sets_agree_with_the_table() -> None:
    assert ACTIVE_STATES == {state for state in JobState if state.is_active}
    assert not ACTIVE_STATES & (TERMINAL_STATES | MODERATOR_RESOLVES)
    assert TRACKED_STATES | DELIVERY_STATES <= ACTIVE_STATES
    for state in JobState:
        edges = {(s, n) for s, nexts in TRANSITIONS.items() for n in nexts}
        for table in MODERATOR_TRANSITIONS:
            edges |= {(s, n) for s, nexts in table.items() for n in nexts}
        assert sources_of(state) == {s for s, n in edges if n is state}


def test_job_changes_are_job_columns_of_the_same_type() -> None:
    changes = get_type_hints(JobChanges)
    columns = get_type_hints(Job)
    for name, kind in changes.items():
        assert columns[name] == kind, name
    assert {"id", "state", "guild_id", "user_id", "created_at"}.isdisjoint(changes)
