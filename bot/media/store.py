"""Where rehosted inputs and archived results live, and the public URLs that reach them."""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from pydantic import BaseModel

from bot.media.fetch import sync_file
from bot.media.filework import FileWork
from bot.media.sniff import sniff_file_sync
from storage.media import MediaRepository, NewMediaObject
from storage.models import MediaObject, MediaRole

log = logging.getLogger(__name__)

TOKEN_BYTES = 24  # 192 bits: unguessable, and short enough for a URL


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def object_key(token: str, role: MediaRole, filename: str) -> str:
    """Where a published file lives inside the store: derived from our token, never from a
    request (the member's file name only lends its lower-cased suffix)."""
    folder = "results" if role is MediaRole.RESULT else "inputs"
    return f"{folder}/{token}{Path(filename).suffix.lower()}"


class PublicLink(BaseModel):
    """A URL that reaches a stored file from outside, and when it stops working (None: when
    the file's retention ends, a date not known yet)."""

    url: str
    expires_at: float | None


class MediaStore(Protocol):
    """Where inputs are rehosted for the provider and results archived for members."""

    def incoming_dir(self, job_id: int) -> Path:
        """Local scratch space for a job's downloads before they are checked and published."""
        ...

    async def publish(
        self,
        source: Path,
        *,
        job_id: int | None,
        role: MediaRole,
        position: int,
        filename: str,
        content_type: str,
        size_bytes: int,
        sha256: str,
        expires_at: float | None = None,
        kept_until: float | None = None,
    ) -> MediaObject: ...

    async def public_link(self, media: MediaObject) -> PublicLink:
        """A link the provider (inputs) or a member (results too large to attach) can open."""
        ...

    def local_file(
        self, media: MediaObject, scratch: Path
    ) -> AbstractAsyncContextManager[Path]:
        """The stored bytes as a local file while the context lasts: the stored file itself
        where it is on disk, else a download into `scratch` that is removed on exit."""
        ...

    async def copy_to(self, media: MediaObject, dest: Path) -> None:
        """Write a copy of the stored bytes to `dest` (a new input made from a kept file)."""
        ...

    async def delete(self, media: MediaObject) -> None: ...

    async def remove_expired(self) -> int: ...

    async def sweep_incoming(self, keep: Collection[int]) -> int:
        """At start: delete the `.part` files crashed downloads left in scratch folders, and
        the folders left empty, except the folders of the jobs in `keep`; returns how many
        files and folders went."""
        ...

    async def persist(self, media: MediaObject) -> None:
        """Make a file published from a non-durable download durable."""
        ...

    async def intact(self, media: MediaObject) -> bool:
        """Whether the stored copy still looks like what was published (size, type)."""
        ...


class MediaStoreBase(ABC):
    """What every store shares: publishing (the file is put under a key made from a fresh
    token, then recorded), local scratch folders for downloads (even when the published files
    live elsewhere) and the retention sweep (the records say what expired)."""

    def __init__(
        self, root: Path, repository: MediaRepository, files: FileWork,
        clock: Callable[[], float],
    ) -> None:
        self.root = root  # local: scratch (and, for the local store, the published files)
        self.repository = repository
        self._files = files
        self._clock = clock

    def incoming_dir(self, job_id: int) -> Path:
        """Scratch space for a job's downloads before they are validated and published."""
        return self.root / "incoming" / str(job_id)

    @abstractmethod
    async def _put(self, source: Path, key: str, content_type: str, size: int) -> None:
        """Store the checked file `source` under `key`; `source` is gone afterwards."""

    @abstractmethod
    async def _remove(self, key: str) -> None:
        """Remove what `_put` stored, if anything."""

    async def delete(self, media: MediaObject) -> None:
        await self._remove(media.relative_path)
        await self.repository.mark_deleted(media.id, now=self._clock())

    async def publish(
        self,
        source: Path,
        *,
        job_id: int | None,
        role: MediaRole,
        position: int,
        filename: str,
        content_type: str,
        size_bytes: int,
        sha256: str,
        expires_at: float | None = None,
        kept_until: float | None = None,
    ) -> MediaObject:
        token = new_token()
        key = object_key(token, role, filename)
        await self._put(source, key, content_type, size_bytes)
        try:
            return await self.repository.add(
                NewMediaObject(
                    token=token, job_id=job_id, role=role, position=position,
                    relative_path=key, filename=filename, content_type=content_type,
                    size_bytes=size_bytes, sha256=sha256, expires_at=expires_at,
                    kept_until=kept_until,
                ),
                now=self._clock(),
            )
        except BaseException:
            await self._remove(key)
            raise

    async def remove_expired(self) -> int:
        """Delete files whose retention ended; returns how many went."""
        removed = 0
        for media in await self.repository.expired(now=self._clock()):
            await self.delete(media)
            removed += 1
        if removed:
            log.info("media retention removed=%d", removed)
        return removed

    async def sweep_incoming(self, keep: Collection[int]) -> int:
        removed = await self._files.run(
            _sweep_incoming_sync, self.root / "incoming", {str(job_id) for job_id in keep}
        )
        if removed:
            log.info("incoming sweep removed=%d", removed)
        return removed


class LocalMediaStore(MediaStoreBase):
    """Files under `root` served by the bot's own web app at `{public_base}/m/<token>/<name>`.

    The stored path is derived from the token we generated, never from a request.
    """

    def __init__(
        self,
        root: Path,
        public_base_url: str,
        repository: MediaRepository,
        files: FileWork,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(root, repository, files, clock)
        self.public_base_url = public_base_url.rstrip("/")
        self._folders: set[Path] = set()

    async def _put(self, source: Path, key: str, content_type: str, size: int) -> None:
        target = self.root / key
        if target.parent not in self._folders:  # a handful of folders, made once
            await self._files.run(target.parent.mkdir, parents=True, exist_ok=True)
            self._folders.add(target.parent)
        # Same filesystem under DATA_DIR: a rename, so no partial file is ever reachable.
        await self._files.run(source.replace, target)

    async def _remove(self, key: str) -> None:
        await self._files.run((self.root / key).unlink, True)

    async def public_link(self, media: MediaObject) -> PublicLink:
        # Served by web.py while the record is live: the link dies with `expires_at`.
        return PublicLink(
            url=f"{self.public_base_url}/m/{media.token}/{quote(media.filename)}",
            expires_at=media.expires_at,
        )

    @asynccontextmanager
    async def local_file(self, media: MediaObject, scratch: Path) -> AsyncIterator[Path]:
        yield self.path_of(media)  # already on disk: no copy

    async def copy_to(self, media: MediaObject, dest: Path) -> None:
        await self._files.run(shutil.copyfile, self.path_of(media), dest)

    def path_of(self, media: MediaObject) -> Path:
        return self.root / media.relative_path


    async def persist(self, media: MediaObject) -> None:
        await self._files.run(sync_file, self.path_of(media))

    async def intact(self, media: MediaObject) -> bool:
        return await self._files.run(self._intact_sync, media)

    def _intact_sync(self, media: MediaObject) -> bool:
        # A power cut before the data reached the disk leaves a short file, or one of the
        # right length full of zeros: the size and the leading bytes tell both apart.
        path = self.path_of(media)
        try:
            if path.stat().st_size != media.size_bytes:
                return False
            kind = sniff_file_sync(path)
        except OSError:
            return False
        return kind.mime_type == media.content_type


def _sweep_incoming_sync(incoming: Path, keep: set[str]) -> int:
    removed = 0
    try:
        folders = [entry for entry in incoming.iterdir() if entry.is_dir()]
    except FileNotFoundError:
        return 0
    for folder in folders:
        if folder.name in keep:
            continue
        for part in folder.glob("*.part"):
            part.unlink(missing_ok=True)
            removed += 1
        try:
            folder.rmdir()  # only when empty
        except OSError:
            continue
        removed += 1
    return removed
