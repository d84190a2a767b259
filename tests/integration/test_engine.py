from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path

import pytest

from bot.evolink import RESULT_LINK_LIFETIME_S
from bot.i18n import Text
from bot.jobs.errors import EditRefused
from bot.jobs.notifier import ModeratorAlert
from sandbox.evolink_sim import TaskScript
from storage.models import JobState, LedgerKind
from tests.integration.engine_harness import FAST_SCHEDULE, Harness

pytestmark = pytest.mark.both_engines


async def test_valid_submit_creates_one_task_and_archives_the_exact_result(
    harness: Harness,
) -> None:
    services = await harness.start()
    video = harness.files.clip(seconds=4.2)
    image = harness.files.image()
    job = await services.engine.submit(harness.request(video, images=[image]))
    assert job.state is JobState.SUBMITTED and job.billed_seconds == 5
    await harness.notifier.wait_for_delivery(job.id)

    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    assert harness.sim.create_attempts == 1
    task = harness.sim.tasks[done.provider_task_id or ""]
    assert (task.request.image_urls or [""])[0].startswith(harness.public_base_url)
    provider_view = await services.client.get_task(task.id)
    async with services.http.provider.session.get(provider_view.result_url or "") as response:
        served = await response.read()
    [delivered] = harness.notifier.delivered_bytes[job.id]
    assert hashlib.sha256(delivered).digest() == hashlib.sha256(served).digest()
    kinds = [e.kind for e in await services.quota.entries_for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]


def leftover_files(harness: Harness) -> list[Path]:
    media = harness.tmp_path / "data" / "media"
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


@pytest.mark.parametrize(
    ("make_inputs", "code", "reason"),
    [
        (lambda f: (f.image("still.png"), []), "video_unsupported_type", "PNG image, not a video"),
        (lambda f: (f.clip(seconds=0.5), []), "video_too_short", "0.5 s long"),
        (lambda f: (f.url("missing.mp4"), []), "download_http_error", "HTTP 404"),
        (
            lambda f: (f.clip(), [f.image("small.png", 120, 120)]),
            "image_too_small",
            "Reference image 1",
        ),
        (lambda f: (f.clip(), [f.clip("second.mp4")]), "image_unsupported_type", "image 1"),
    ],
)
async def test_each_invalid_input_is_refused_before_any_provider_call(
    harness: Harness,
    make_inputs,
    code: str,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    services = await harness.start()
    video, images = make_inputs(harness.files)
    with pytest.raises(EditRefused) as refused:
        await services.engine.submit(harness.request(video, images=images))
    assert refused.value.code == code
    assert reason in refused.value.reason
    assert harness.sim.create_attempts == 0
    [job] = await services.jobs.search(1)
    assert job.state is JobState.REJECTED
    assert Text.from_stored(job.error_message or "") == refused.value.text
    assert await services.quota.entries_for_job(job.id) == []
    assert leftover_files(harness) == []


async def test_declared_oversize_is_refused_without_downloading(harness: Harness) -> None:
    services = await harness.start()
    request = harness.request(harness.files.clip())
    request.video.declared_size = 150_000_000
    with pytest.raises(EditRefused, match=r"150\.0 MB; the limit is 100 MB"):
        await services.engine.submit(request)
    assert harness.files.requests == [] and await services.jobs.search(1) == []


async def test_two_concurrent_submits_at_the_limit_create_exactly_one_task(
    harness: Harness,
) -> None:
    services = await harness.start(DEFAULT_DAILY_SECONDS="6")
    clip = harness.files.clip(seconds=4.0)
    outcomes = await asyncio.gather(
        services.engine.submit(harness.request(clip)),
        services.engine.submit(harness.request(clip)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, EditRefused)]
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(refused) == 1 and len(accepted) == 1
    assert refused[0].code == "daily_quota" and "2 s of editing left today" in refused[0].reason
    assert harness.sim.create_attempts == 1


async def test_failed_task_is_explained_and_refunded(harness: Harness) -> None:
    services = await harness.start()
    harness.sim.script_next_task(
        TaskScript(outcome="failed", error_code="content_policy_violation", processing_s=5)
    )
    job = await services.engine.submit(harness.request(harness.files.clip()))
    await harness.notifier.wait_for_event("failed", job.id)
    failed = await harness.job(job.id)
    assert failed.state is JobState.FAILED and failed.error_code == "content_policy_violation"
    assert "safety filter" in (failed.error_message or "")
    entries = await services.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, 4),
        (LedgerKind.REFUND, -4),
    ]


async def test_an_edit_whose_status_message_cannot_be_posted_is_never_submitted(
    harness: Harness,
) -> None:
    services = await harness.start()
    harness.notifier.fail_status_posts = 1

    job = await services.engine.submit(harness.request(harness.files.clip()))

    assert job.state is JobState.FAILED and job.error_code == "status_post_failed"
    assert "Nothing was charged" in (job.error_message or "")
    assert harness.sim.create_attempts == 0
    entries = await services.quota.entries_for_job(job.id)
    assert [(e.kind, e.seconds) for e in entries] == [
        (LedgerKind.RESERVE, 4), (LedgerKind.RELEASE, -4),
    ]


@pytest.mark.money_open("the task exists but stays uncertain until adopted")
async def test_create_timeout_leaves_submission_unknown_and_never_resubmits(
    harness: Harness,
) -> None:
    services = await harness.start(EVOLINK_READ_TIMEOUT_SECONDS="0.3")
    harness.sim.hang_next_create()
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.SUBMISSION_UNKNOWN
    assert harness.notifier.kinds(job.id) == ["accepted", "unknown"]
    assert harness.sim.create_attempts == 1 and len(harness.sim.tasks) == 1
    await harness.stop()
    await harness.start()  # a restart must not resubmit either
    assert harness.sim.create_attempts == 1
    assert (await harness.job(job.id)).state is JobState.SUBMISSION_UNKNOWN


async def test_provider_refusal_releases_the_reservation(harness: Harness) -> None:
    services = await harness.start()
    harness.sim.fail_next_create(402)
    job = await services.engine.submit(harness.request(harness.files.clip()))
    assert job.state is JobState.FAILED and "out of credits" in (job.error_message or "")
    kinds = [e.kind for e in await services.quota.entries_for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.RELEASE]


async def test_expired_result_link_ends_in_a_clear_failed_state(harness: Harness) -> None:
    # A 410 is retried until shortly before the link's 24 h are up (by the completion the
    # bot saw): here that deadline is a second after it.
    services = await harness.start(schedule=dataclasses.replace(
        FAST_SCHEDULE, result_link_margin_s=RESULT_LINK_LIFETIME_S - 1.0
    ))
    harness.sim.script_next_task(TaskScript(processing_s=30, estimated_time=3000))
    job = await services.engine.submit(harness.request(harness.files.clip()))
    task = harness.sim.tasks[job.provider_task_id or ""]
    await harness.sim.wait_until(lambda: task.terminal_at is not None)  # inputs checked
    harness.sim.advance(2 * 86400)  # the provider finished and its link died meanwhile
    await services.tracker.job_hint(job.id)
    # The member is told first, then the moderators: wait for the last of the two.
    await harness.notifier.wait_for_event(f"alert:{ModeratorAlert.RESULT_EXPIRED}", job.id)
    assert "failed" in harness.notifier.kinds(job.id)
    failed = await harness.job(job.id)
    assert failed.error_code == "result_expired" and "expired" in (failed.error_message or "")
    assert harness.notifier.alerts_for(job.id) == [ModeratorAlert.RESULT_EXPIRED]
    kinds = [e.kind for e in await services.quota.entries_for_job(job.id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.SETTLE]  # billed: the charge stays


async def test_a_prompt_with_a_nul_character_is_edited_with_a_stand_in_on_either_engine(
    harness: Harness,
) -> None:
    # PostgreSQL's text cannot hold NUL: stored as is, it failed the whole submit there.
    services = await harness.start()
    job = await services.engine.submit(
        harness.request(harness.files.clip(), prompt="make it\x00 snow")
    )
    await harness.notifier.wait_for_delivery(job.id)
    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED and done.prompt == "make it\ufffd snow"
    assert harness.sim.tasks[done.provider_task_id or ""].request.prompt == "make it\ufffd snow"
