"""The provider callback route against hostile path segments (property tests).

Whatever text an attacker puts in the job id and secret segments, the answer is an ordinary
4xx (never a 5xx with a traceback), and only the right job id with its right secret reaches
the tracker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.metrics import Metrics
from bot.web import LoopLagMonitor, WebServices, create_web_app

JOB_ID = 42
SECRET = "s3cret-Callback_path-0123456789"


@dataclass
class _Job:
    id: int
    callback_secret: str


class _Jobs:
    """Answers like the repository: the one job by its id, None for any other id."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def get(self, job_id: int) -> _Job | None:
        self.asked.append(job_id)
        assert 0 < job_id < 2**63, "an id SQLite cannot store reached the repository"
        return _Job(JOB_ID, SECRET) if job_id == JOB_ID else None


@dataclass
class Route:
    client: TestClient[Any, Any]
    jobs: _Jobs
    hints: list[tuple[int, str | None]]

    async def post(self, job_segment: str, secret_segment: str) -> int:
        path = f"/callbacks/evolink/{quote(job_segment, safe='')}/{quote(secret_segment, safe='')}"
        async with self.client.post(path, data=b'{"id": "task-1"}') as response:
            return response.status


@pytest.fixture
async def route() -> AsyncIterator[Route]:
    jobs = _Jobs()
    hints: list[tuple[int, str | None]] = []

    async def on_callback(job_id: int, task_id: str | None) -> bool:
        hints.append((job_id, task_id))
        return True

    services = WebServices(
        db=cast(Any, None), jobs=cast(Any, jobs), media=cast(Any, None), local_store=None,
        on_callback=on_callback, lag=LoopLagMonitor(), metrics=Metrics(process_metrics=False),
    )
    async with TestClient(TestServer(create_web_app(services))) as client:
        yield Route(client, jobs, hints)


# Digits of every kind (superscripts, Arabic-Indic, fullwidth), long runs, signs and spaces:
# the shapes `str.isdigit()` and `int()` disagree on.
_DIGITISH = st.text(
    alphabet=st.sampled_from("0123456789²³¹٣０９+-_ .eE"), min_size=0, max_size=40
)
SEGMENTS = st.one_of(
    st.text(max_size=60), _DIGITISH, st.from_regex(r"[0-9]{1,30}", fullmatch=True),
    st.sampled_from([str(JOB_ID), f"0{JOB_ID}", SECRET, "..", ".", "%2F"]),
)


# One server for all examples: each example clears what it looks at.
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_segment=SEGMENTS, secret_segment=SEGMENTS)
async def test_any_path_segments_are_refused_plainly_and_never_reach_the_tracker(
    route: Route, job_segment: str, secret_segment: str
) -> None:
    route.hints.clear()
    status = await route.post(job_segment, secret_segment)
    assert status < 500, (job_segment, secret_segment, status)
    if (job_segment, secret_segment) == (str(JOB_ID), SECRET):
        assert status == 204 and route.hints == [(JOB_ID, "task-1")]
    else:
        assert status in (404, 405), (job_segment, secret_segment, status)
        assert route.hints == []


@pytest.mark.parametrize(
    "job_segment", ["²", "4²", "٤٢", "４２", "1" * 19, "9" * 23, "042", "-42", "+42", " 42"]
)
async def test_odd_job_ids_get_the_answer_of_an_unknown_job(route: Route, job_segment: str) -> None:
    route.hints.clear()
    asked_before = len(route.jobs.asked)
    assert await route.post(job_segment, SECRET) == 404
    assert route.hints == [] and len(route.jobs.asked) == asked_before
    assert await route.post(str(JOB_ID), SECRET) == 204  # the right one still gets through
