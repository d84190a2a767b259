"""Published media in an S3-compatible bucket (AWS, R2, MinIO, ...), reached by presigned URLs.

The bot then serves no media itself: the provider fetches inputs, and members open results
too large to attach, straight from the bucket. Scratch downloads stay on local disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from bot.media.filework import FileWork
from bot.media.store import MediaStoreBase, PublicLink
from bot.settings import PRESIGN_MAX_S
from storage.media import MediaRepository
from storage.models import MediaObject

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

# Files up to one part go in one PUT; bigger ones in parts of this size, one part in memory at
# a time (S3's smallest part is 5 MiB, its most parts 10,000: 80 GB, far above any result).
PART_BYTES: Final = 8 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES: Final = 1024 * 1024
# SigV4 everywhere: botocore would presign with the deprecated SigV2 in some regions, which
# R2 refuses and whose links have no such limit to state. Throttling, 5xx answers and broken
# connections are retried with backoff by botocore's "standard" mode.
CLIENT_CONFIG: Final = AioConfig(signature_version="s3v4", retries={"mode": "standard"})


def link_lifetime_s(media: MediaObject, now: float, unknown_end_s: int) -> int:
    """The one rule for how long a presigned link works: until the file's public life ends
    (`expires_at`: a result's retention, an input's grace after the provider is done), or for
    `unknown_end_s` while that end is not known yet (an input the provider may still fetch);
    never past SigV4's 7 days."""
    wanted = unknown_end_s if media.expires_at is None else int(media.expires_at - now)
    return max(1, min(wanted, PRESIGN_MAX_S))


class S3MediaStore(MediaStoreBase):
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        scratch_root: Path,
        repository: MediaRepository,
        files: FileWork,
        *,
        unknown_end_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(scratch_root, repository, files, clock)
        self._client = client
        self.bucket = bucket
        self._unknown_end_s = unknown_end_s

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str | None,
        scratch_root: Path,
        repository: MediaRepository,
        files: FileWork,
        unknown_end_s: int,
        clock: Callable[[], float] = time.time,
    ) -> AsyncIterator[S3MediaStore]:
        """One client for the bot's life; credentials come from AWS's usual chain (the
        environment, ~/.aws, an instance role)."""
        async with get_session().create_client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=CLIENT_CONFIG
        ) as client:
            yield cls(client, bucket, scratch_root, repository, files,
                      unknown_end_s=unknown_end_s, clock=clock)

    async def _put(self, source: Path, key: str, content_type: str, size: int) -> None:
        await self._upload(source, key, content_type, size)
        # Like the local store's rename: the scratch file is gone once stored.
        await self._files.run(source.unlink, True)

    async def _remove(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def _upload(self, source: Path, key: str, content_type: str, size: int) -> None:
        handle: IO[bytes] = await self._files.run(source.open, "rb")
        try:
            if size <= PART_BYTES:
                body = await self._files.run(handle.read)
                await self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
                )
            else:
                await self._upload_parts(handle, key, content_type)
        finally:
            await self._files.run(handle.close)

    async def _upload_parts(self, handle: IO[bytes], key: str, content_type: str) -> None:
        started = await self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = started["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        try:
            while chunk := await self._files.run(handle.read, PART_BYTES):
                number = len(parts) + 1
                answer = await self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=chunk,
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            await self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Parts of an unfinished upload are stored (and billed) until aborted.
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            raise

    async def public_link(self, media: MediaObject) -> PublicLink:
        now = self._clock()
        lifetime = link_lifetime_s(media, now, self._unknown_end_s)
        url = await self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket, "Key": media.relative_path,
                "ResponseContentType": media.content_type,
                "ResponseContentDisposition": f'inline; filename="{media.filename}"',
            },
            ExpiresIn=lifetime,
        )
        return PublicLink(url=url, expires_at=now + lifetime)

    @asynccontextmanager
    async def local_file(self, media: MediaObject, scratch: Path) -> AsyncIterator[Path]:
        await self._files.run(scratch.mkdir, parents=True, exist_ok=True)
        # `.part`: a crash while it exists leaves it to the sweep at start.
        copy = scratch / f"{media.token}.part"
        try:
            await self.copy_to(media, copy)
            yield copy
        finally:
            await self._files.run(copy.unlink, True)

    async def copy_to(self, media: MediaObject, dest: Path) -> None:
        """Streamed to disk a chunk at a time."""
        answer = await self._client.get_object(Bucket=self.bucket, Key=media.relative_path)
        handle: IO[bytes] = await self._files.run(dest.open, "wb")
        try:
            async with answer["Body"] as body:
                async for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    await self._files.run(handle.write, chunk)
        finally:
            await self._files.run(handle.close)

    async def persist(self, media: MediaObject) -> None:
        """Nothing to do: S3 answers a PUT only once the object is stored durably."""

    async def intact(self, media: MediaObject) -> bool:
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=media.relative_path)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise  # the bucket, not the object, has a problem: retried like any failure
            return False
        return bool(head["ContentLength"] == media.size_bytes
                    and head.get("ContentType") == media.content_type)
