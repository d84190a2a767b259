"""One bot process of figure 8, run as ``python -m bench.cluster_node``: the bot's services
(engine, tracker, web app) on a PostgreSQL schema, against the EvoLink simulator, with a
no-op notifier instead of Discord (figure 5's).

With ``--seed N`` it first creates N provider tasks that run for an hour and N jobs
SUBMITTED for them, along the engine's own path (figure 5's `create_submitted`). Every
poll interval is 1 s, so all N jobs are always due: the trackers poll as fast as they
can, and polls per second is their throughput. It prints ``READY {json}`` once it tracks,
then runs until SIGTERM (a clean stop) or SIGKILL (the failover figure).

With ``--shard`` it is one of two processes (SHARD_COUNT=2), as an operator runs them; the
media store is then S3, pointed at a closed port: no task completes within the run, so no
medium is ever stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any

from bench.common import API_KEY, quota_env
from bench.tracker_scale import NullNotifier, create_submitted
from sandbox.demo.processes import free_port

READY_PREFIX = "READY "
TASK_SECONDS = 3600  # nothing completes within a run
POLL_EVERY_S = 1.0  # shorter than a pass over every job: the trackers never idle
SEED_BATCH = 500  # jobs per database transaction while seeding
SEED_CREATES_AT_ONCE = 64


async def seed(services: Any, count: int, sim_url: str) -> None:
    """`count` hour-long provider tasks and their SUBMITTED jobs, due in the first second."""
    import aiohttp

    from bot.evolink import EditTaskRequest
    from storage.models import JobSource, NewJob

    model = services.config.model
    async with aiohttp.ClientSession() as control, control.post(
        f"{sim_url}/_sim/default-script",
        json={"processing_s": TASK_SECONDS, "estimated_time": TASK_SECONDS,
              "check_inputs": False},
    ) as response:
        response.raise_for_status()
    gate = asyncio.Semaphore(SEED_CREATES_AT_ONCE)

    async def create() -> str:
        async with gate:
            task = await services.client.create_edit_task(EditTaskRequest(
                model=model, prompt="cluster", video_url="https://cdn.example/clip.mp4",
            ))
            return str(task.id)

    for start in range(0, count, SEED_BATCH):
        size = min(SEED_BATCH, count - start)
        task_ids = await asyncio.gather(*(create() for _ in range(size)))
        now = time.time()

        def insert(raw: Any, task_ids: list[str] = task_ids, start: int = start,
                   now: float = now) -> None:
            for offset, task_id in enumerate(task_ids):
                new = NewJob(
                    guild_id=1, channel_id=2, user_id=start + offset + 1, model=model,
                    prompt="cluster", callback_secret="s" * 32,
                    source=JobSource(video_url="https://cdn.example/clip.mp4"),
                )
                create_submitted(raw, new=new, now=now, changes={
                    "provider_task_id": task_id, "submitted_at": now,
                    "estimated_time_s": TASK_SECONDS, "next_poll_at": now + POLL_EVERY_S,
                })

        await services.db.run(insert)
    services.tracker.wake()


def settings_env(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    env: dict[str, Any] = {
        "DATA_DIR": args.data_dir, "DATABASE_URL": args.database_url,
        "DATABASE_SCHEMA": args.schema, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port), "METRICS_PORT": "0",
        "EVOLINK_BASE_URL": args.sim_url, "EVOLINK_API_KEY": API_KEY,
        "EVOLINK_REQUESTS_PER_SECOND": "100000", "LOG_LEVEL": "WARNING",
        "POLL_FIRST_MAX_SECONDS": str(POLL_EVERY_S),
        "POLL_MIN_INTERVAL_SECONDS": str(POLL_EVERY_S),
        "POLL_MAX_INTERVAL_SECONDS": str(POLL_EVERY_S),
        **quota_env(),
    }
    if args.shard is not None:
        env |= {
            "SHARD_COUNT": "2", "SHARD_IDS": str(args.shard), "MEDIA_STORE": "s3",
            "S3_BUCKET": "never-used", "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "S3_REGION": "us-east-1",
        }
    return env


async def node(args: argparse.Namespace) -> None:
    from bot.jobs.config import EngineConfig
    from bot.services import Services
    from bot.settings import Settings

    settings = Settings(_env_file=None, **settings_env(args))
    config = EngineConfig.from_settings(settings)  # the default lease and concurrency
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Services.running(settings, NullNotifier(), config=config) as services:
        if args.seed:
            await seed(services, args.seed, args.sim_url)
        print(READY_PREFIX + json.dumps({
            "process": settings.process_name, "lease_s": config.schedule.lease_s,
            "concurrency": config.schedule.concurrency,
        }), flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_node")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--shard", type=int, choices=(0, 1))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(node(args))


def parse_ready(line: str) -> dict[str, Any] | None:
    if not line.startswith(READY_PREFIX):
        return None
    result: dict[str, Any] = json.loads(line.removeprefix(READY_PREFIX))
    return result


if __name__ == "__main__":
    main()
