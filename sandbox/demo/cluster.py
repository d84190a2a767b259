"""Several bot processes as an operator runs them (issue 14): `SHARD_COUNT=4`, one process
with `SHARD_IDS=0,1` and one with `2,3`, one PostgreSQL database and one S3 bucket.

The demo's "cluster" scenario and the cluster test (tests/cluster) both build on this, on
top of a `Demo` whose emulator and simulator are running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped]

from sandbox.demo.control import JsonObj
from sandbox.demo.processes import Child, DemoError, free_port, log_tail, python_module
from sandbox.demo.session import Demo, bot_command

T = TypeVar("T")

SHARD_COUNT = 4
PROCESS_SHARDS: tuple[tuple[int, ...], ...] = ((0, 1), (2, 3))
SYNC_TIMEOUT_S = 30.0
SHARDS_TIMEOUT_S = 40.0
# moto accepts any credentials; the bots take them the standard AWS way (the environment).
LOOPBACK_S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def shard_of(guild_id: str | int) -> int:
    """The shard that receives a guild's events: `(guild_id >> 22) % num_shards` (Discord,
    Topics → Gateway → Sharding)."""
    return (int(guild_id) >> 22) % SHARD_COUNT


def process_of(shard: int) -> int:
    return next(index for index, shards in enumerate(PROCESS_SHARDS) if shard in shards)


@dataclass(frozen=True)
class Place:
    """A server with a #general channel and members, and the shard its events go to."""

    shard: int
    guild_id: str
    channel_id: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class SharedStorage:
    """Where every process keeps its jobs and media: a schema of a PostgreSQL database, and
    a bucket (`MEDIA_STORE=s3` settings with the bucket's AWS credentials)."""

    database_url: str
    schema: str
    s3: Mapping[str, str]

    def environment(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "DATABASE_SCHEMA": self.schema, **self.s3}


@contextlib.asynccontextmanager
async def loopback_bucket() -> AsyncIterator[dict[str, str]]:
    """An S3 endpoint on loopback (moto's threaded server, a dev dependency) with one bucket;
    yields the bots' settings for it, credentials included."""
    try:
        from aiobotocore.session import get_session
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise DemoError(
            f"the cluster scenario needs moto's S3 server ({error}): install the dev extra "
            "(`make setup` does)"
        ) from None
    # Its HTTP server logs every request to the terminal, amid the transcript.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        settings = {
            "MEDIA_STORE": "s3", "S3_BUCKET": "kling-media",
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "S3_REGION": "us-east-1",
            **LOOPBACK_S3_CREDENTIALS,
        }
        async with get_session().create_client(
            "s3", endpoint_url=settings["S3_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id=LOOPBACK_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOOPBACK_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        ) as s3:
            await s3.create_bucket(Bucket=settings["S3_BUCKET"])
        yield settings
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def fresh_schema(database_url: str) -> AsyncIterator[str]:
    """A schema name of its own on the server, dropped (with what the bots made) at the end.

    The bots create it themselves on their first start, as an operator's would."""
    name = f"kling_cluster_{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await connection.close()


async def database_refusal(database_url: str | None) -> str | None:
    """Why the cluster cannot run on `database_url` (None: it can), in plain words."""
    how = (
        "Point it at one with DATABASE_URL=postgresql://user:password@host:5432/db; a "
        "throwaway server will do: `docker run -d -p 5432:5432 -e "
        "POSTGRES_HOST_AUTH_METHOD=trust postgres:17`, then DATABASE_URL=postgresql://"
        "postgres@127.0.0.1:5432/postgres (the compose profile `cluster` runs PostgreSQL "
        "too, but does not publish its port to this machine). The demo works in a schema "
        "of its own and drops it at the end."
    )
    if not database_url:
        return "the cluster scenario runs two bot processes on one PostgreSQL database. " + how
    try:
        connection = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as error:
        return f"PostgreSQL at {_without_password(database_url)} is not reachable ({error}). " + how
    await connection.close()
    return None


def _without_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}@{tail}"


class Cluster:
    """Two `python -m bot run` processes of one bot, beside the demo's stand-ins."""

    def __init__(self, demo: Demo, storage: SharedStorage, *, lease_s: float) -> None:
        self.demo = demo
        self.storage = storage
        self.lease_s = lease_s
        self.bots: dict[int, Child] = {}
        self.killed: set[int] = set()

    def environment(self, index: int) -> dict[str, str]:
        env = self.demo.bot_environment()
        env.pop("DEV_GUILD_ID")  # the commands are published to every server (sync-commands)
        env.update(self.storage.environment())
        env.update({
            "SHARD_COUNT": str(SHARD_COUNT),
            "SHARD_IDS": ",".join(map(str, PROCESS_SHARDS[index])),
            "JOB_LEASE_SECONDS": f"{self.lease_s:g}",
            "PUBLIC_BASE_URL": "",  # polling: no callbacks, no public web server
            "WEB_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),  # each process has its own /metrics
            "DATA_DIR": str(self.demo.workdir / f"data-{index + 1}"),
        })
        return env

    async def places(self, per_shard: int, members: int) -> list[Place]:
        """Servers until every shard has `per_shard` of them, ordered by shard."""
        emu = self.demo.emu
        found: dict[int, list[Place]] = {shard: [] for shard in range(SHARD_COUNT)}
        number = 0
        while any(len(places) < per_shard for places in found.values()):
            number += 1
            guild = await emu.create_guild(f"Server {number}")
            shard = shard_of(guild["id"])
            if len(found[shard]) < per_shard:
                channel = await emu.create_channel(guild["id"], "general")
                member_ids = [
                    (await emu.create_member(guild["id"], f"member-{number}-{n}"))["user"]["id"]
                    for n in range(members)
                ]
                found[shard].append(
                    Place(shard, str(guild["id"]), str(channel["id"]), tuple(map(str, member_ids)))
                )
            await emu.advance(0.001)  # the next snowflake's millisecond: the next shard
        return [place for shard in sorted(found) for place in found[shard]]

    async def publish_commands(self) -> None:
        """`python -m bot sync-commands`: the slash commands in every server, once."""
        child = await self.demo.children.start(
            "sync-commands", python_module("bot", "sync-commands"), self.environment(0),
            "sync-commands.log",
        )
        code = await child.run_to_end(SYNC_TIMEOUT_S)
        if code != 0:
            raise DemoError(
                f"sync-commands exited with code {code}:\n{log_tail(child.log_path)}"
            )

    async def start(self) -> None:
        """Both processes at once (their start-up migrations meet), until every shard is
        connected to the gateway."""
        for index, shards in enumerate(PROCESS_SHARDS):
            self.bots[index] = await self.demo.children.start(
                f"bot process {index + 1} (shards {','.join(map(str, shards))})", bot_command(),
                self.environment(index), f"bot-{index + 1}.log",
            )
        await self.until(
            self._all_connected, f"all {SHARD_COUNT} shards to connect to the gateway"
        )

    async def _all_connected(self) -> bool | None:
        state = await self.demo.emu.state()
        return self._connected(state) == set(range(SHARD_COUNT)) or None

    @staticmethod
    def _connected(state: JsonObj) -> set[int]:
        return {
            session["shard"][0] for session in state["gateway_sessions"]
            if session["ready"] and session["connected"] and session["shard"][1] == SHARD_COUNT
        }

    async def kill(self, index: int) -> int:
        """`kill -9` one process (its whole process group); returns its pid."""
        child = self.bots[index]
        assert child.proc is not None
        self.killed.add(index)
        pid = child.proc.pid
        child.kill()
        await child.stop()  # reaps it and closes its log; nothing left to signal
        return pid

    def _failure(self) -> str | None:
        """A process that exited without being killed: its log says why."""
        for index, child in self.bots.items():
            code = child.proc.returncode if child.proc is not None else None
            if code is not None and index not in self.killed:
                return f"{child.name} exited with code {code}:\n{log_tail(child.log_path)}"
        return None

    async def until(
        self, check: Callable[[], Awaitable[T | None]], what: str,
        timeout: float = SHARDS_TIMEOUT_S,  # noqa: ASYNC109
    ) -> T:
        """Re-check each time the emulator's state changes (a long poll: at most a second
        between looks) until `check` returns something; DemoError after `timeout`."""
        emu = self.demo.emu
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        version = -1
        while True:
            found = await check()
            if found is not None:
                return found
            if failure := self._failure():
                raise DemoError(failure)
            if loop.time() > deadline:
                raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
            version = await emu.wait(version, 1.0)
