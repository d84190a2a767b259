"""The websocket gateway: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME, dispatch.

Every dispatched event gets the session's next sequence number and is kept in a bounded
buffer, so a client that reconnects with RESUME (op 6) receives what it missed followed by
RESUMED. Unknown or invalidated sessions get op 9 with ``d: false``. ``compress=zlib-stream``
in the connect URL turns on one zlib stream per connection, each message ending with a
Z_SYNC_FLUSH (``00 00 ff ff``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import payloads
from .models import Application
from .state import EmulatorState

log = logging.getLogger(__name__)

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15

OnSent = Callable[[float], None]


@dataclass
class BufferedEvent:
    seq: int
    payload: dict[str, Any]
    on_sent: OnSent | None = None
    sent: bool = False

    def mark_sent(self, at: float) -> None:
        if not self.sent:
            self.sent = True
            if self.on_sent is not None:
                self.on_sent(at)


@dataclass
class GatewaySession:
    id: str
    app: Application
    intents: int
    seq: int = 0
    buffer: deque[BufferedEvent] = field(default_factory=lambda: deque(maxlen=2000))
    connection: GatewayConnection | None = None
    invalid: bool = False
    ready: bool = False
    resumes: int = 0
    shard: tuple[int, int] = (0, 1)  # (shard_id, num_shards) from IDENTIFY

    def owns(self, guild_id: int) -> bool:
        """https://discord.com/developers/docs/topics/gateway#sharding: a guild's events go
        to shard ``(guild_id >> 22) % num_shards``."""
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id

    def push(self, event: str, data: dict[str, Any], on_sent: OnSent | None = None) -> None:
        self.seq += 1
        buffered = BufferedEvent(self.seq, {"op": 0, "t": event, "s": self.seq, "d": data}, on_sent)
        self.buffer.append(buffered)
        if self.connection is not None:
            self.connection.send_event(buffered)


class GatewayConnection:
    """One websocket. Frames go through a queue so compression and ordering stay intact."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.compress = compress
        self._compressor = zlib.compressobj() if compress else None
        self._queue: asyncio.Queue[BufferedEvent | dict[str, Any] | None] = asyncio.Queue()
        self.session: GatewaySession | None = None
        self.received: list[dict[str, Any]] = []
        self.close_code_sent: int | None = None
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, payload: dict[str, Any]) -> None:
        self._queue.put_nowait(payload)

    def send_event(self, event: BufferedEvent) -> None:
        self._queue.put_nowait(event)

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None or self.ws.closed:
                return
            payload = item.payload if isinstance(item, BufferedEvent) else item
            text = json.dumps(payload, separators=(",", ":"))
            if isinstance(item, BufferedEvent):
                # Marked before the write: with the bot in this process and event loop, its
                # answer could otherwise arrive before this task resumes after sending.
                item.mark_sent(time.monotonic())
            try:
                if self._compressor is not None:
                    data = self._compressor.compress(text.encode())
                    data += self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int, message: str = "") -> None:
        self.close_code_sent = code
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message.encode())

    async def finish(self) -> None:
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._writer, 1.0)


class GatewayHub:
    def __init__(self, state: EmulatorState, *, heartbeat_interval_ms: int = 41_250) -> None:
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        #: Discord's 2,500 (tests lower it rather than create thousands of guilds).
        self.max_guilds_per_shard = 2500
        self.resume_url = ""
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()
        self.close_codes: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- queries -------------------------------------------------------------------------

    def sessions_for(self, app_id: int) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.app.id == app_id and not s.invalid]

    def connected(self, app_id: int) -> bool:
        return any(s.connection is not None and s.ready for s in self.sessions_for(app_id))

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None = None,
        app_id: int | None = None,
        intent: int = 0,
        on_sent: OnSent | None = None,
    ) -> int:
        """Send an event to every session it concerns; return how many got it.

        ``app_id`` targets one application (its newest session only, like interactions);
        ``guild_id`` targets every bot in that guild whose intents include ``intent``. Either
        way a guild's events reach only the shard that owns the guild.
        """
        targets: list[GatewaySession]
        if app_id is not None:
            sessions = [
                s for s in self.sessions_for(app_id) if guild_id is None or s.owns(guild_id)
            ]
            targets = sessions[-1:]
        else:
            targets = [
                s
                for s in self.sessions.values()
                if not s.invalid
                and (
                    guild_id is None
                    or (s.app.bot.id in self.state.guilds[guild_id].members and s.owns(guild_id))
                )
            ]
        targets = [s for s in targets if intent == 0 or s.intents & intent]
        for session in targets:
            session.push(event, self._redact(session, event, data), on_sent)
        return len(targets)

    @staticmethod
    def _redact(session: GatewaySession, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Without MESSAGE_CONTENT a bot sees no content of others' messages."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & MESSAGE_CONTENT:
            return data
        bot_id = str(session.app.bot.id)
        author = data.get("author", {}).get("id")
        mentioned = any(m.get("id") == bot_id for m in data.get("mentions", []))
        if author == bot_id or mentioned:
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

    # -- connections ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        conn = GatewayConnection(ws, compress)
        self.connections.add(conn)
        conn.send(
            {
                "op": 10,
                "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                "s": None,
                "t": None,
            }
        )
        try:
            if request.query.get("encoding", "json") != "json":
                await conn.close(4002, "only encoding=json is supported")
                return ws
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await conn.close(4002, "Error while decoding payload.")
                    break
                conn.received.append(frame)
                await self._on_frame(conn, frame)
        finally:
            code = conn.close_code_sent or ws.close_code
            if code is not None:
                self.close_codes.append(int(code))
            self.connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            await conn.finish()
            self.state.changed()
        return ws

    async def _on_frame(self, conn: GatewayConnection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == 1:
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            self._resume(conn, data or {})
        elif op == 8 and conn.session is not None:
            self._members_chunk(conn.session, data or {})
        elif op in (3, 4):
            return
        elif conn.session is None:
            await conn.close(4003, "Not authenticated.")
        else:
            await conn.close(4001, "Unknown opcode.")

    async def _identify(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.close(4005, "Already authenticated.")
            return
        app = self.state.application_by_token(str(data.get("token", "")))
        if app is None:
            await conn.close(4004, "Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        shard_id, count = int(shard[0]), int(shard[1])
        if count < 1 or not 0 <= shard_id < count:
            await conn.close(4010, "Invalid shard.")
            return
        bot = app.bot
        every_guild = [g for g in self.state.guilds.values() if bot.id in g.members]
        # Close code 4011: "your session would have handled too many guilds" (gateway docs;
        # Discord requires sharding from 2,500 guilds, and discord.py does not reconnect).
        if len(every_guild) / count > self.max_guilds_per_shard:
            await conn.close(4011, "Sharding required.")
            return
        session = GatewaySession(
            secrets.token_hex(16), app, int(data.get("intents", 0)), shard=(shard_id, count)
        )
        self.sessions[session.id] = session
        conn.session = session
        session.connection = conn
        guilds = [g for g in every_guild if session.owns(g.id)]
        ready = {
            "v": 10,
            "user": {**payloads.user(bot), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_url,
            "shard": [shard_id, count],
            "application": {"id": str(app.id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        session.push("READY", ready)
        if session.intents & GUILDS:
            for guild in guilds:
                session.push(
                    "GUILD_CREATE",
                    payloads.gateway_guild(
                        self.state,
                        guild,
                        bot_user_id=bot.id,
                        all_members=bool(session.intents & GUILD_MEMBERS),
                    ),
                )
        session.ready = True
        self.state.changed()

    def _resume(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id", "")))
        seq = int(data.get("seq") or 0)
        valid = (
            session is not None
            and not session.invalid
            and session.app.token == data.get("token")
            and (not session.buffer or session.buffer[0].seq <= seq + 1)
        )
        if not valid or session is None:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        old = session.connection
        if old is not None and old is not conn:
            old.session = None
            task = asyncio.create_task(old.close(4000, "session resumed elsewhere"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        conn.session = session
        session.connection = conn
        session.resumes += 1
        for event in session.buffer:
            if event.seq > seq:
                conn.send_event(event)
        session.push("RESUMED", {})
        self.state.changed()

    def _members_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        ids = data.get("guild_id")
        for raw in ids if isinstance(ids, list) else [ids]:
            guild = self.state.guilds.get(int(raw)) if raw else None
            if guild is None:
                continue
            session.push(
                "GUILD_MEMBERS_CHUNK",
                {
                    "guild_id": str(guild.id),
                    "members": [payloads.member(m) for m in guild.members.values()],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "nonce": data.get("nonce"),
                },
            )

    async def disconnect(
        self, code: int = 4000, *, app_id: int | None = None, invalidate: bool = False
    ) -> int:
        """Close live connections (of one app, or all) with ``code``; return how many."""
        closed = 0
        for conn in list(self.connections):
            session = conn.session
            if app_id is not None and (session is None or session.app.id != app_id):
                continue
            if invalidate and session is not None:
                session.invalid = True
            await conn.close(code, "closed by the emulator")
            closed += 1
        return closed

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.close(1001, "emulator stopping")
