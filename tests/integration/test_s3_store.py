"""The S3 media store against a real S3 HTTP endpoint on loopback (moto's server)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiobotocore.session import get_session

from bot.media.filework import FileWork
from bot.media.s3store import PART_BYTES, S3MediaStore
from bot.settings import PRESIGN_MAX_S
from storage.database import Database
from storage.media import MediaRepository
from storage.models import MediaObject, MediaRole
from tests.s3_endpoint import REGION, S3Bucket

NOW = 1_800_000_000.0
INPUT_LINK_S = 3600


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(
    s3_bucket: S3Bucket, db: Database, tmp_path: Path
) -> AsyncIterator[tuple[S3MediaStore, Clock]]:
    clock = Clock()
    with FileWork.running() as files:
        async with S3MediaStore.running(
            bucket=s3_bucket.name, endpoint_url=s3_bucket.endpoint_url, region=REGION,
            scratch_root=tmp_path / "media", repository=MediaRepository(db), files=files,
            unknown_end_s=INPUT_LINK_S, clock=clock,
        ) as running:
            yield running, clock


def scratch_of(tmp_path: Path, data: bytes) -> Path:
    return tmp_path / f"scratch-{hashlib.sha256(data).hexdigest()[:8]}"


async def publish(
    store: S3MediaStore, tmp_path: Path, data: bytes, *, role: MediaRole = MediaRole.RESULT,
    expires_at: float | None = None, kept_until: float | None = None,
) -> MediaObject:
    source = scratch_of(tmp_path, data)
    source.write_bytes(data)
    return await store.publish(
        source, job_id=None, role=role, position=0, filename="result.mp4",
        content_type="video/mp4", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        expires_at=expires_at, kept_until=kept_until,
    )


async def download(url: str) -> tuple[int, bytes, str | None]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read(), response.headers.get("Content-Type")


def link_seconds(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])


async def test_a_published_file_is_downloadable_from_its_presigned_link(
    store: tuple[S3MediaStore, Clock], tmp_path: Path
) -> None:
    s3, _ = store
    data = os.urandom(200_000)
    media = await publish(s3, tmp_path, data, expires_at=NOW + 7200)

    assert not scratch_of(tmp_path, data).exists()  # the scratch copy went with the upload
    link = await s3.public_link(media)
    status, body, content_type = await download(link.url)
    assert (status, content_type) == (200, "video/mp4")
    assert body == data
    assert await s3.intact(media)


async def test_a_file_larger_than_one_part_is_uploaded_in_parts_and_read_back_whole(
    store: tuple[S3MediaStore, Clock], tmp_path: Path
) -> None:
    s3, _ = store
    data = os.urandom(PART_BYTES + 123_457)
    media = await publish(s3, tmp_path, data)

    async with s3.local_file(media, tmp_path / "scratch") as copy:
        assert copy.read_bytes() == data
    assert not copy.exists()  # the download is scratch only while it is used
    dest = tmp_path / "kept-copy"
    await s3.copy_to(media, dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == media.sha256
    assert await s3.intact(media)


async def test_a_link_lives_as_long_as_its_file_is_public_within_sigv4s_week(
    store: tuple[S3MediaStore, Clock], tmp_path: Path
) -> None:
    s3, _ = store
    result = await publish(s3, tmp_path, b"r" * 100, expires_at=NOW + 5000)
    pending_input = await publish(s3, tmp_path, b"i" * 100, role=MediaRole.INPUT_VIDEO)
    long_kept = await publish(s3, tmp_path, b"l" * 100, expires_at=NOW + 30 * 86400)

    result_link = await s3.public_link(result)
    assert (result_link.expires_at, link_seconds(result_link.url)) == (NOW + 5000, 5000)
    input_link = await s3.public_link(pending_input)
    assert (input_link.expires_at, link_seconds(input_link.url)) == (
        NOW + INPUT_LINK_S, INPUT_LINK_S
    )
    capped = await s3.public_link(long_kept)  # what members are told is what S3 allows
    assert (capped.expires_at, link_seconds(capped.url)) == (NOW + PRESIGN_MAX_S, PRESIGN_MAX_S)


async def test_expired_files_leave_the_bucket_and_kept_inputs_stay(
    store: tuple[S3MediaStore, Clock], tmp_path: Path
) -> None:
    s3, clock = store
    gone = await publish(s3, tmp_path, b"a" * 100, expires_at=NOW + 10)
    kept = await publish(
        s3, tmp_path, b"b" * 100, role=MediaRole.INPUT_VIDEO, expires_at=NOW + 10,
        kept_until=NOW + 1000,
    )
    gone_url = (await s3.public_link(gone)).url

    clock.now = NOW + 11
    assert await s3.remove_expired() == 1
    status, _, _ = await download(gone_url)
    # The object itself is gone, though the link's signature still holds (S3 answers 403
    # for a missing key to whoever may not list the bucket, 404 to whoever may).
    assert status in (403, 404)
    assert not await s3.intact(gone)
    assert await s3.intact(kept)

    clock.now = NOW + 1001
    assert await s3.remove_expired() == 1
    assert not await s3.intact(kept)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="a different size"),
        pytest.param(lambda data: None, id="gone"),
    ],
)
async def test_an_object_changed_behind_the_bots_back_is_not_intact(
    store: tuple[S3MediaStore, Clock], tmp_path: Path, s3_bucket: S3Bucket,
    damage: Callable[[bytes], bytes | None],
) -> None:
    s3, _ = store
    data = b"x" * 1000
    media = await publish(s3, tmp_path, data)
    async with get_session().create_client(
        "s3", endpoint_url=s3_bucket.endpoint_url, region_name=REGION
    ) as raw:
        replacement = damage(data)
        if replacement is None:
            await raw.delete_object(Bucket=s3_bucket.name, Key=media.relative_path)
        else:
            await raw.put_object(
                Bucket=s3_bucket.name, Key=media.relative_path, Body=replacement,
                ContentType="video/mp4",
            )
    assert not await s3.intact(media)
