"""The provider balance: read at start and after billing, refused edits it cannot pay for."""

from __future__ import annotations

import pytest

from bot.jobs.errors import EditRefused
from sandbox.evolink_sim import TaskScript
from storage.balance import KEEP_S, BalanceHistory
from storage.models import JobState
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

STANDARD_4S = 48.0  # a 4 s clip on the standard model: 4 s × 12 credits
HOUR = 3600.0


async def test_an_edit_the_balance_cannot_pay_for_is_refused_before_anything_is_charged(
    harness: Harness,
) -> None:
    harness.sim.credits = 30.0  # less than the cheapest edit (3 s × 12)
    services = await harness.start()
    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(harness.request(harness.files.clip()))
    assert refused.value.code == "provider_balance" and "Nothing was charged" in (
        refused.value.reason
    )
    assert harness.sim.create_attempts == 0
    assert await services.jobs.count_by_state() == {}  # not even a rejected job: no fetch
    assert harness.notifier.balance_alerts == [(30.0, 0)]  # moderators told once


async def test_credits_held_by_edits_in_flight_count_against_the_balance(
    harness: Harness,
) -> None:
    harness.sim.credits = 160.0  # one worst-case hold (10 s × 12 = 120) and some
    harness.sim.set_default_script(TaskScript(processing_s=1_000_000))  # never finish
    services = await harness.start()
    first = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    assert first.state is JobState.SUBMITTED and first.credits == STANDARD_4S
    # /v1/credits still says 160, but 48 are held by the first edit: 112 < 120.
    with pytest.raises(EditRefused, match="provider account"):
        await services.engine.submit(harness.request(harness.files.clip(seconds=3.0)))
    assert harness.sim.create_attempts == 1


async def test_moderators_and_metrics_see_the_balance_and_what_billing_took(
    harness: Harness,
) -> None:
    harness.sim.credits = 1000.0
    services = await harness.start()
    before = (await services.admin.limits_show(1)).provider_balance
    assert before is not None and before.remaining == 1000.0
    assert before.edits_left == 8  # 1000 // (10 s × 12 credits)
    job = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    await harness.notifier.wait_for_delivery(job.id)
    after = await services.balance.refresh()  # what the next scheduled read sees
    assert after is not None and after.remaining == 1000.0 - STANDARD_4S
    rendered = services.metrics.render()[0].decode()
    assert "kling_provider_credits_remaining 952.0" in rendered
    assert harness.notifier.balance_alerts == [(1000.0, 8)]  # below 10 edits: one alert, not two


async def test_moderators_see_how_the_balance_moved_over_a_day_and_a_week(
    harness: Harness,
) -> None:
    harness.sim.credits = 1000.0
    services = await harness.start()
    history = BalanceHistory(services.db)
    now = harness.clock()
    # Readings other processes (or this one, before a restart) took: 30 and 2 hours ago.
    await history.record(at=now - 30 * HOUR, remaining=1300.0)
    await history.record(at=now - 2 * HOUR, remaining=1100.0)
    shown = (await services.admin.limits_show(1)).provider_balance
    assert shown is not None and shown.remaining == 1000.0
    # A day ago the last reading said 1300; nothing is a week old yet.
    assert [(t.days, t.change) for t in shown.trend] == [(1, -300.0), (7, None)]

    job = await services.engine.submit(harness.request(harness.files.clip(seconds=4.0)))
    await harness.notifier.wait_for_delivery(job.id)
    await services.balance.refresh()  # the read after billing is a reading too
    shown = (await services.admin.limits_show(1)).provider_balance
    assert shown is not None
    assert [(t.days, t.change) for t in shown.trend] == [(1, -300.0 - STANDARD_4S), (7, None)]


async def test_readings_older_than_any_window_are_forgotten(harness: Harness) -> None:
    services = await harness.start()
    history = BalanceHistory(services.db)
    now = harness.clock()
    await history.record(at=now - KEEP_S - HOUR, remaining=5000.0)
    await history.record(at=now - 8 * HOUR, remaining=4000.0)
    assert await history.remaining_at([now - 9 * HOUR]) == [5000.0]
    await history.record(at=now, remaining=3000.0)  # a new reading sweeps the oldest
    assert await history.remaining_at([now - 9 * HOUR, now - HOUR, now]) == [
        None, 4000.0, 3000.0,
    ]
