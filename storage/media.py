"""Records of rehosted inputs and archived results."""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite
from pydantic import BaseModel

from storage.database import Database
from storage.models import MediaObject, MediaRole


class NewMediaObject(BaseModel):
    token: str
    job_id: int | None
    role: MediaRole
    position: int = 0
    relative_path: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    expires_at: float | None = None


def _row(row: aiosqlite.Row) -> MediaObject:
    return MediaObject.model_validate(dict(row))


class MediaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, new: NewMediaObject, *, now: float) -> MediaObject:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO media_objects (token, job_id, role, position, relative_path,"
                " filename, content_type, size_bytes, sha256, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    new.token,
                    new.job_id,
                    new.role.value,
                    new.position,
                    new.relative_path,
                    new.filename,
                    new.content_type,
                    new.size_bytes,
                    new.sha256,
                    now,
                    new.expires_at,
                ),
            )
            row = await cursor.fetchone()
        assert row is not None
        return _row(row)

    async def live_by_token(self, token: str, *, now: float) -> MediaObject | None:
        """The object behind a public token, unless deleted or past its expiry."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM media_objects WHERE token = ? AND deleted_at IS NULL"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (token, now),
            )
            row = await cursor.fetchone()
        return _row(row) if row else None

    async def for_job(self, job_id: int, role: MediaRole | None = None) -> list[MediaObject]:
        async with self._db.read() as conn:
            if role is None:
                cursor = await conn.execute(
                    "SELECT * FROM media_objects WHERE job_id = ? AND deleted_at IS NULL"
                    " ORDER BY role, position",
                    (job_id,),
                )
            else:
                cursor = await conn.execute(
                    "SELECT * FROM media_objects WHERE job_id = ? AND role = ?"
                    " AND deleted_at IS NULL ORDER BY position",
                    (job_id, role.value),
                )
            rows = await cursor.fetchall()
        return [_row(row) for row in rows]

    async def set_expiry_for_job(
        self, job_id: int, roles: Iterable[MediaRole], expires_at: float
    ) -> None:
        """One statement, so one round trip, whatever the number of roles."""
        names = [role.value for role in roles]
        marks = ", ".join("?" for _ in names)
        await self._db.fetch(
            f"UPDATE media_objects SET expires_at = ? WHERE job_id = ? AND role IN ({marks})"
            " AND deleted_at IS NULL",
            (expires_at, job_id, *names),
        )

    async def expired(self, *, now: float, limit: int = 500) -> list[MediaObject]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM media_objects WHERE deleted_at IS NULL AND expires_at <= ?"
                " ORDER BY expires_at LIMIT ?",
                (now, limit),
            )
            rows = await cursor.fetchall()
        return [_row(row) for row in rows]

    async def mark_deleted(self, media_id: int, *, now: float) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE media_objects SET deleted_at = ? WHERE id = ?", (now, media_id)
            )
