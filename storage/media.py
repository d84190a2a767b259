"""Records of rehosted inputs and archived results."""

from __future__ import annotations

from pydantic import BaseModel

from storage.database import Database, DbRow, SyncConn
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
    kept_until: float | None = None


def _row(row: DbRow) -> MediaObject:
    return MediaObject.model_validate(row._asdict())


# The SQL of "the provider is done with this job's inputs": they stay public for a grace
# period, and a lifetime is only ever shortened (inputs already expiring sooner stay so).
EXPIRE_INPUTS_SQL = (
    "UPDATE media_objects SET expires_at = ? WHERE job_id = ?"
    " AND role IN ('input_video', 'input_image') AND deleted_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > ?)"
)


def expire_inputs_sync(raw: SyncConn, job_id: int, at: float) -> None:
    raw.execute(EXPIRE_INPUTS_SQL, (at, job_id, at))


class MediaRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, new: NewMediaObject, *, now: float) -> MediaObject:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO media_objects (token, job_id, role, position, relative_path,"
                " filename, content_type, size_bytes, sha256, created_at, expires_at,"
                " kept_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
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
                    new.kept_until,
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

    async def kept_by_token(self, token: str, *, now: float) -> MediaObject | None:
        """The object behind a token while the bot keeps its file (public or not)."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM media_objects WHERE token = ? AND deleted_at IS NULL"
                " AND (expires_at IS NULL OR expires_at > ? OR kept_until > ?)",
                (token, now, now),
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

    async def expired(self, *, now: float, limit: int = 500) -> list[MediaObject]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM media_objects WHERE deleted_at IS NULL AND expires_at <= ?"
                " AND (kept_until IS NULL OR kept_until <= ?) ORDER BY expires_at LIMIT ?",
                (now, now, limit),
            )
            rows = await cursor.fetchall()
        return [_row(row) for row in rows]

    async def mark_deleted(self, media_id: int, *, now: float) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE media_objects SET deleted_at = ? WHERE id = ?", (now, media_id)
            )
