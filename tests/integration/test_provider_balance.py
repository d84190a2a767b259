"""The provider balance: read at start and after billing, refused edits it cannot pay for."""

from __future__ import annotations

import pytest

from bot.jobs.errors import EditRefused
from sandbox.evolink_sim import TaskScript
from storage.models import JobState
from tests.integration.engine_harness import Harness

pytestmark = pytest.mark.both_engines

STANDARD_4S = 48.0  # a 4 s clip on the standard model: 4 s × 12 credits


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
