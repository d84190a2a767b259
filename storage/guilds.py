"""Per-guild configuration: settings, limit overrides, blocks, channel rules, audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.database import AsyncConn, Database
from storage.models import AuditEntry, BlockedUser, ChannelRule, GuildSettings, LimitOverride

_GUILD_COLUMNS = (
    "daily_seconds",
    "monthly_seconds",
    "max_concurrent",
    "cooldown_s",
    "monthly_budget",
    "paused",
    "pause_reason",
    "moderator_role_id",
    "log_channel_id",
)


async def read_guild_settings(conn: AsyncConn, guild_id: int) -> GuildSettings:
    cursor = await conn.execute("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    row = await cursor.fetchone()
    if row is None:
        return GuildSettings(guild_id=guild_id)
    data = row._asdict()
    data.pop("updated_at", None)
    data["paused"] = bool(data["paused"])
    return GuildSettings.model_validate(data)


async def read_overrides(
    conn: AsyncConn, guild_id: int, user_id: int, role_ids: Sequence[int]
) -> tuple[LimitOverride | None, list[LimitOverride]]:
    cursor = await conn.execute(
        "SELECT user_id AS subject_id, daily_seconds, monthly_seconds FROM user_limits"
        " WHERE guild_id = ? AND user_id = ?",
        (guild_id, user_id),
    )
    user_row = await cursor.fetchone()
    roles: list[LimitOverride] = []
    if role_ids:
        marks = ", ".join("?" for _ in role_ids)
        cursor = await conn.execute(
            "SELECT role_id AS subject_id, daily_seconds, monthly_seconds FROM role_limits"
            f" WHERE guild_id = ? AND role_id IN ({marks}) ORDER BY role_id",
            (guild_id, *role_ids),
        )
        roles = [LimitOverride.model_validate(row._asdict()) for row in await cursor.fetchall()]
    user = LimitOverride.model_validate(user_row._asdict()) if user_row else None
    return user, roles


async def read_blocked(
    conn: AsyncConn, guild_id: int, user_id: int
) -> BlockedUser | None:
    cursor = await conn.execute(
        "SELECT * FROM blocked_users WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
    )
    row = await cursor.fetchone()
    return BlockedUser.model_validate(row._asdict()) if row else None


async def read_channel_rules(conn: AsyncConn, guild_id: int) -> dict[int, ChannelRule]:
    cursor = await conn.execute(
        "SELECT channel_id, rule FROM channel_rules WHERE guild_id = ?", (guild_id,)
    )
    return {int(row[0]): ChannelRule(row[1]) for row in await cursor.fetchall()}


async def write_audit(
    conn: AsyncConn,
    *,
    guild_id: int,
    actor_id: int,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None,
    now: float,
) -> AuditEntry:
    """Append an audit row inside the caller's transaction, so it commits with the change."""
    cursor = await conn.execute(
        "INSERT INTO audit_log (guild_id, actor_id, action, target, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        (guild_id, actor_id, action, target, json.dumps(detail) if detail else None, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    return AuditEntry.model_validate(row._asdict())


async def update_settings_in(
    conn: AsyncConn, guild_id: int, *, now: float, changes: dict[str, Any]
) -> GuildSettings:
    """Upsert guild settings inside the caller's transaction; unknown columns are refused."""
    unknown = set(changes) - set(_GUILD_COLUMNS)
    if unknown:
        raise ValueError(f"unknown guild settings: {sorted(unknown)}")
    await conn.execute(
        "INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, ?)"
        " ON CONFLICT (guild_id) DO NOTHING",
        (guild_id, now),
    )
    if changes:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await conn.execute(
            f"UPDATE guild_settings SET {assignments}, updated_at = ? WHERE guild_id = ?",
            (*changes.values(), now, guild_id),
        )
    return await read_guild_settings(conn, guild_id)


class GuildRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def log_channels(self) -> list[tuple[int, int]]:
        """(guild id, log channel id) of every server that set a log channel."""
        rows = await self._db.fetch(
            "SELECT guild_id, log_channel_id FROM guild_settings"
            " WHERE log_channel_id IS NOT NULL ORDER BY guild_id"
        )
        return [(int(row[0]), int(row[1])) for row in rows]

    async def claim_guide(self, guild_id: int, *, now: float) -> bool:
        """Record that the first-steps guide goes to this server now; False when it went
        there before (one statement: two racing claims cannot both win)."""
        rows = await self._db.fetch(
            "INSERT INTO server_guides (guild_id, posted_at) VALUES (?, ?)"
            " ON CONFLICT (guild_id) DO NOTHING RETURNING guild_id",
            (guild_id, now),
        )
        return bool(rows)

    async def settings(self, guild_id: int) -> GuildSettings:
        async with self._db.read() as conn:
            return await read_guild_settings(conn, guild_id)

    async def blocked(self, guild_id: int, user_id: int) -> BlockedUser | None:
        async with self._db.read() as conn:
            return await read_blocked(conn, guild_id, user_id)

    async def channel_rules(self, guild_id: int) -> dict[int, ChannelRule]:
        async with self._db.read() as conn:
            return await read_channel_rules(conn, guild_id)

    async def audit_entries(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT * FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
            rows = await cursor.fetchall()
        return [AuditEntry.model_validate(row._asdict()) for row in rows]
