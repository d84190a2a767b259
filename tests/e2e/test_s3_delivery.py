"""Results delivered from a bucket (MEDIA_STORE=s3, no PUBLIC_BASE_URL): attached when they
fit, else linked by a presigned URL whose lifetime the member is told."""

from __future__ import annotations

import re
import time

import aiohttp

from sandbox.discord_emulator.models import Message
from tests.e2e.harness import Stack
from tests.e2e.user_view import ephemeral_answer
from tests.s3_endpoint import S3Bucket

RETENTION_S = 7 * 86400  # RESULT_RETENTION_SECONDS default (and SigV4's longest link)


async def provider_result(stack: Stack) -> bytes:
    [task] = stack.sim.tasks.values()
    async with aiohttp.ClientSession() as http, http.get(task.result_url or "") as response:
        return await response.read()


async def delivered_result(stack: Stack, s3_bucket: S3Bucket) -> Message:
    await stack.start_bot(PUBLIC_BASE_URL="", **s3_bucket.settings())
    ix = await stack.edit({"prompt": "make it blue", "video": stack.clip()})
    await ephemeral_answer(stack, ix)
    thread = await stack.emu.wait_for_thread(stack.world.channel)
    return await stack.emu.wait_for_message(thread, lambda m: "is ready" in m.content)


async def test_a_result_from_the_bucket_is_attached_when_it_fits(
    stack: Stack, s3_bucket: S3Bucket
) -> None:
    delivered = await delivered_result(stack, s3_bucket)
    [attachment] = delivered.attachments
    assert attachment.data == await provider_result(stack)


async def test_a_result_too_large_to_attach_is_a_presigned_link_with_its_lifetime(
    stack: Stack, s3_bucket: S3Bucket
) -> None:
    stack.emu.set_upload_limit(stack.world.guild.id, 1000)  # any result is too large
    started = time.time()
    delivered = await delivered_result(stack, s3_bucket)
    assert delivered.attachments == []
    match = re.search(re.escape(f"{s3_bucket.endpoint_url}/{s3_bucket.name}/") + r"\S+",
                      delivered.content)
    assert match, delivered.content
    async with aiohttp.ClientSession() as http, http.get(match.group(0)) as response:
        assert response.status == 200
        assert await response.read() == await provider_result(stack)
    [expiry] = {int(t) for t in re.findall(r"<t:(\d+):[fR]>", delivered.content)}
    assert started + RETENTION_S - 60 <= expiry <= time.time() + RETENTION_S
