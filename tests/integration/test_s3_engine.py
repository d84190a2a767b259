"""A whole edit with MEDIA_STORE=s3 and no public web server: the EvoLink simulator fetches
the inputs through presigned links from a real S3 endpoint on loopback."""

from __future__ import annotations

import hashlib

import pytest

from bot.jobs.models import Requester
from storage.models import JobState, MediaRole
from tests.integration.engine_harness import Harness
from tests.s3_endpoint import S3Bucket

pytestmark = pytest.mark.both_engines


async def test_an_edit_with_media_on_s3_and_polling_needs_no_public_web_server(
    harness: Harness, s3_bucket: S3Bucket
) -> None:
    services = await harness.start(PUBLIC_BASE_URL="", **s3_bucket.settings())
    job = await services.engine.submit(
        harness.request(harness.files.clip(seconds=4.2), images=[harness.files.image()])
    )
    await harness.notifier.wait_for_delivery(job.id)

    done = await harness.job(job.id)
    assert done.state is JobState.DELIVERED
    task = harness.sim.tasks[done.provider_task_id or ""]
    bucket_url = f"{s3_bucket.endpoint_url}/{s3_bucket.name}"
    assert task.request.video_urls[0].startswith(f"{bucket_url}/inputs/")
    assert (task.request.image_urls or [""])[0].startswith(f"{bucket_url}/inputs/")
    # The member gets the provider's video, and its link (shown when too large to attach)
    # is the bucket's, working for as long as the result is kept.
    [result] = harness.notifier.delivered[job.id]
    assert result.public_url.startswith(f"{bucket_url}/results/")
    assert result.expires_at is not None and result.media.expires_at is not None
    assert result.media.expires_at - 1 < result.expires_at <= result.media.expires_at
    async with services.http.provider.session.get(
        (await services.client.get_task(task.id)).result_url or ""
    ) as response:
        served = await response.read()
    [delivered] = harness.notifier.delivered_bytes[job.id]
    assert hashlib.sha256(delivered).digest() == hashlib.sha256(served).digest()
    # Nothing published stays on local disk (scratch only), and the bot serves no media.
    media_dir = harness.tmp_path / "data" / "media"
    assert [p for p in media_dir.rglob("*") if p.is_file()] == []
    async with services.http.provider.session.get(
        f"{harness.public_base_url}/m/{result.media.token}/{result.media.filename}"
    ) as response:
        assert response.status == 404

    # Re-run takes the kept inputs back from the bucket.
    again = await services.actions.rerun(job.id, job.guild_id, Requester(user_id=job.user_id))
    await harness.notifier.wait_for_delivery(again.id)
    kept = await services.media.for_job(again.id, MediaRole.INPUT_VIDEO)
    originals = await services.media.for_job(job.id, MediaRole.INPUT_VIDEO)
    assert [m.sha256 for m in kept] == [m.sha256 for m in originals]
    assert harness.sim.create_attempts == 2
