"""Figure 6: throughput of the bot's media route, 100 MB file, 8 concurrent readers.

A child process (this module run with ``python -m bench.media_serving``) opens a real
SQLite database, publishes the file through the bot's LocalMediaStore and serves the bot's
own web app (`bot.web.create_web_app`: token lookup in SQLite, FileResponse, the metrics
signal) on one port, and a plain aiohttp app whose handler is just
``web.FileResponse(path)`` for the same file on another port. This driver process reads
the file with 8 concurrent raw HTTP/1.1 clients (asyncio streams, bytes discarded) from
one server, then from the other, alternating which goes first; throughput is
8 × file size / time until the last reader is done, median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    MB,
    Context,
    Figure,
    bench_child_env,
    error_figure,
    median,
    proc_cpu_seconds,
)
from sandbox.demo.processes import Children, free_port, python_module

NAME = "media serving"
SIZE_MB = 100
READERS = 8
TARGET = 0.8
READY_PREFIX = "READY "
READ_SIZE = 1 << 20


# --- the child: both servers ----------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.media.filework import FileWork
    from bot.media.store import LocalMediaStore
    from bot.metrics import Metrics
    from bot.web import LoopLagMonitor, WebServer, WebServices, create_web_app
    from storage.database import Database
    from storage.jobs import JobRepository
    from storage.media import MediaRepository
    from storage.models import MediaRole

    data = Path(args.data_dir)
    db = await Database.open(data / "kling.sqlite3")
    media_repo = MediaRepository(db)
    bot_port, plain_port = free_port(), free_port()
    files = FileWork(ThreadPoolExecutor(2))
    store = LocalMediaStore(data / "media", f"http://127.0.0.1:{bot_port}", media_repo, files)
    scratch = data / "incoming.mp4"
    await asyncio.to_thread(shutil.copyfile, args.file, scratch)
    size = (await asyncio.to_thread(scratch.stat)).st_size
    media = await store.publish(
        scratch, job_id=None, role=MediaRole.RESULT, position=0, filename="result.mp4",
        content_type="video/mp4", size_bytes=size, sha256="0" * 64,
    )
    lag = LoopLagMonitor()
    lag.start()

    async def nothing(*_: object) -> bool:
        return True

    bot_server = WebServer(
        create_web_app(WebServices(
            db=db, jobs=JobRepository(db), media=media_repo, local_store=store,
            on_callback=nothing, lag=lag, metrics=Metrics(process_metrics=False),
        )),
        "127.0.0.1", bot_port,
    )
    await bot_server.start()
    path = store.path_of(media)

    async def plain_handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    plain_app = web.Application()
    plain_app.router.add_get("/file", plain_handler)
    plain_runner = web.AppRunner(plain_app, access_log=None)
    await plain_runner.setup()
    await web.TCPSite(plain_runner, "127.0.0.1", plain_port).start()
    print(READY_PREFIX + json.dumps({
        "bot_url": (await store.public_link(media)).url, "plain_url": f"http://127.0.0.1:{plain_port}/file",
    }), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await plain_runner.cleanup()
        await bot_server.stop()
        await lag.stop()
        await db.close()


def child_main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media_serving")
    parser.add_argument("--file", required=True)
    parser.add_argument("--data-dir", required=True)
    asyncio.run(serve(parser.parse_args()))


# --- the parent: readers --------------------------------------------------------------------


async def read_once(url: str) -> int:
    """GET `url` over a fresh connection and discard the body; returns the bytes read."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"refusing a non-loopback URL: {url}")
    reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
    try:
        writer.write(
            f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            .encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = head.split(" ", 2)[1]
        if status != "200":
            raise RuntimeError(f"{url} answered HTTP {status}")
        length = next(
            int(line.split(":", 1)[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length:")
        )
        remaining = length
        for _ in range(length // 1024 + 2):  # bounded: at least 1 KiB per read
            if remaining <= 0:
                break
            chunk = await reader.read(min(remaining, READ_SIZE))
            if not chunk:
                raise RuntimeError(f"{url}: connection closed with {remaining} bytes left")
            remaining -= len(chunk)
        return length - remaining
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def round_throughput(url: str, server_pid: int | None = None) -> tuple[float, float, float]:
    """(bytes per second, server CPU s, client CPU s) for one round of READERS readers."""
    server_cpu = proc_cpu_seconds(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    began = time.perf_counter()
    sizes = await asyncio.gather(*(read_once(url) for _ in range(READERS)))
    elapsed = time.perf_counter() - began
    return (
        sum(sizes) / elapsed,
        (proc_cpu_seconds(server_pid) - server_cpu) if server_pid else 0.0,
        time.process_time() - client_cpu,
    )


def parse_ready(line: str) -> dict[str, Any] | None:
    if not line.startswith(READY_PREFIX):
        return None
    result: dict[str, Any] = json.loads(line.removeprefix(READY_PREFIX))
    return result


async def run(ctx: Context) -> list[Figure]:
    rounds = ctx.mode.serving_rounds
    workload = (
        f"GET a {SIZE_MB} MB file, {READERS} concurrent readers; median of {rounds} paired "
        "rounds (ratio per pair)"
    )
    target = f"≥ {TARGET:g}× baseline"
    workdir = ctx.subdir("media-serving")
    bot: list[float] = []
    plain: list[float] = []
    cpu: dict[str, list[tuple[float, float]]] = {"bot": [], "plain": []}
    try:
        big = await ctx.media.asized(SIZE_MB)
        async with Children(workdir) as children:
            server = await children.start(
                "media servers",
                [*python_module("bench.media_serving"), "--file", str(big),
                 "--data-dir", str(workdir / "data")],
                bench_child_env(), "media-servers.log",
            )
            urls = await server.ready_line(parse_ready, 60.0)
            pid = server.pid
            async with asyncio.timeout(30.0 + rounds * 20.0):
                await round_throughput(urls["bot_url"])  # warm-up: page cache, connections
                await round_throughput(urls["plain_url"])
                for index in range(rounds):
                    order = [("bot", urls["bot_url"]), ("plain", urls["plain_url"])]
                    for name, url in order if index % 2 == 0 else order[::-1]:
                        rate, server_cpu, client_cpu = await round_throughput(url, pid)
                        (bot if name == "bot" else plain).append(rate)
                        cpu[name].append((server_cpu, client_cpu))
    except Exception as error:
        return [error_figure("6", NAME, workload, target, error)]
    # Adjacent rounds are paired: the machine's drift (page cache, neighbours on the host)
    # hits both servers of a pair alike.
    ratio = median([b / p for b, p in zip(bot, plain, strict=True)])
    server_cpu = {name: sum(a for a, _ in v) for name, v in cpu.items()}
    return [Figure(
        figure="6", name=NAME, workload=workload,
        result=f"{median(bot) / MB:.0f} MB/s (bot's /m/<token>/<name> route; server CPU "
        f"{server_cpu['bot'] / (rounds * READERS * SIZE_MB / 1000):.2f} s/GB)",
        baseline=f"{median(plain) / MB:.0f} MB/s (plain FileResponse; server CPU "
        f"{server_cpu['plain'] / (rounds * READERS * SIZE_MB / 1000):.2f} s/GB)", ratio=ratio,
        target=target, passed=ratio >= TARGET,
        limit=None if ratio >= TARGET else (
            "per request the bot's route adds a SQLite token lookup and the metrics signal; "
            "compare the server CPU per GB of both"
        ),
        details={
            "bot_bytes_per_s": [round(x) for x in bot],
            "plain_bytes_per_s": [round(x) for x in plain], "readers": READERS,
            "file_bytes": SIZE_MB * MB,
            "cpu_s_per_round_server_client": {
                name: [(round(a, 3), round(b, 3)) for a, b in values]
                for name, values in cpu.items()
            },
        },
    )]


if __name__ == "__main__":
    sys.exit(child_main())
