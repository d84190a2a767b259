"""Figure 8: several bot processes on one PostgreSQL (issue 14).

8a, tracker throughput: 4,000 jobs in flight, every one due each second (bench/cluster_node.py),
so the trackers poll as fast as they can. Polls per second (the simulator's count of task
queries) with one bot process, then with two (SHARD_IDS=0 and 1) on the same schema; the
ratio is the figure. Each window also records who used the CPU (each bot process, the
simulator, the PostgreSQL backends serving the bots, the whole server, the whole machine)
and what those backends were doing when sampled (running, waiting for a lock, waiting for
the bot inside a transaction): the cores, not the code, may be what caps the ratio.

8b, failover: right after 8a, with most jobs parked (bench/cluster_failover.py), the process
"shards-0" is killed with SIGKILL while it holds leases on jobs it is polling. The time from
the kill to the survivor's first lease of one of those jobs (read from the lease itself: its
end minus the lease length, on the survivor's clock) is the figure; every orphan must wait
for its lease to end.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from bench.cluster_failover import failover_figure, measure_failover
from bench.cluster_node import parse_ready
from bench.common import (
    API_KEY,
    Context,
    Figure,
    bench_child_env,
    error_figure,
    skipped_figure,
)
from bench.postgres import Schema, server_url, throwaway_schema, unreachable
from bench.proc_stats import (
    MachineCpu,
    client_ports,
    load_average,
    postgres_server_cpu,
    process_cpu,
)
from sandbox.demo.processes import Child, Children, parse_simulator_line, python_module

JOBS = 4000
TARGET_RATIO = 1.8
TARGET_FAILOVER_S = 30.0
NAME_THROUGHPUT = "tracker throughput, 1 vs 2 processes"
NAME_FAILOVER = "failover after kill -9"
SAMPLE_EVERY_S = 0.25  # pg_stat_activity, for what the bots' backends were doing
LOCK_WAIT = "waiting for a lock"
QUERY_CHARS = 120  # of a statement waiting for a lock, to tell which one it is
WARM_UP_S = 3.0
READY_LIMIT_S = 120.0  # seeding 4,000 provider tasks and jobs included


@dataclass
class Window:
    """One measured window: polls, CPU seconds by party, the backends' sampled states."""

    seconds: float = 0.0
    polls: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    backend_states: dict[str, int] = field(default_factory=dict)
    lock_waits_by_statement: dict[str, int] = field(default_factory=dict)

    @property
    def polls_per_s(self) -> float:
        return self.polls / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2), "polls": self.polls,
            "polls_per_s": round(self.polls_per_s, 1),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "cpu_ms_per_poll": {
                k: round(v * 1000 / max(1, self.polls), 3) for k, v in self.cpu.items()
            },
            "backend_states": self.backend_states,
            "lock_waits_by_statement": self.lock_waits_by_statement,
        }


class Cluster:
    def __init__(self, ctx: Context, children: Children, schema: Schema, sim: Child,
                 sim_url: str) -> None:
        self.ctx, self.children, self.schema = ctx, children, schema
        self.sim, self.sim_url = sim, sim_url
        self.http = aiohttp.ClientSession()

    async def start_node(self, shard: int | None, seed: int = 0) -> tuple[Child, dict[str, Any]]:
        label = "single" if shard is None else f"shard-{shard}"
        argv = [
            *python_module("bench.cluster_node"), "--database-url", self.schema.url,
            "--schema", self.schema.name, "--sim-url", self.sim_url,
            "--data-dir", str(self.ctx.subdir(f"cluster-{label}")), "--seed", str(seed),
            *([] if shard is None else ["--shard", str(shard)]),
        ]
        child = await self.children.start(
            f"bot process {label}", argv, bench_child_env(), f"cluster-{label}.log"
        )
        return child, await child.ready_line(parse_ready, READY_LIMIT_S)

    async def polls(self) -> int:
        async with self.http.get(f"{self.sim_url}/_sim/stats") as response:
            return int((await response.json())["gets"])

    async def measure(self, bots: list[Child], seconds: float) -> Window:
        pids = [b.pid for b in bots if b.pid is not None]
        window = Window()
        stop = asyncio.Event()
        sampler = asyncio.create_task(self._sample_backends(pids, window, stop))
        backends_before = await self._backend_cpu(pids)
        machine_before, server_before = MachineCpu.read(), postgres_server_cpu()
        own_before = {pid: process_cpu(pid) for pid in [*pids, self.sim.pid or 0]}
        polls_before, began = await self.polls(), time.monotonic()
        await asyncio.sleep(seconds)
        polls_after, window.seconds = await self.polls(), time.monotonic() - began
        own_after = {pid: process_cpu(pid) for pid in own_before}
        machine_after, server_after = MachineCpu.read(), postgres_server_cpu()
        backends_after = await self._backend_cpu(pids)
        stop.set()
        await sampler
        window.polls = polls_after - polls_before
        for index, pid in enumerate(pids):
            window.cpu[f"bot process {index + 1}"] = own_after[pid] - own_before[pid]
        sim_pid = self.sim.pid or 0
        window.cpu["simulator"] = own_after[sim_pid] - own_before[sim_pid]
        window.cpu["postgres backends of the bots"] = sum(
            cpu - backends_before.get(pid, 0.0) for pid, cpu in backends_after.items()
        )
        window.cpu["postgres server, all clients"] = server_after - server_before
        window.cpu["machine, all processes"] = machine_after.busy_s - machine_before.busy_s
        window.cpu["machine capacity"] = machine_after.total_s - machine_before.total_s
        return window

    async def _backend_pids(self, pids: list[int]) -> list[int]:
        ports = sorted({port for pid in pids for port in client_ports(pid)})
        rows = await self.schema.connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports
        )
        return [int(row["pid"]) for row in rows]

    async def _backend_cpu(self, pids: list[int]) -> dict[int, float]:
        return {pid: process_cpu(pid) for pid in await self._backend_pids(pids)}

    async def _sample_backends(self, pids: list[int], window: Window, stop: asyncio.Event
                               ) -> None:
        connection = await asyncpg.connect(self.schema.url)  # the other one measures CPU
        try:
            while not stop.is_set():
                ports = sorted({port for pid in pids for port in client_ports(pid)})
                rows = await connection.fetch(
                    "SELECT state, wait_event_type, wait_event, left(query, $2) AS query"
                    " FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
                    ports, QUERY_CHARS,
                )
                for row in rows:
                    key = describe_backend(row["state"], row["wait_event_type"],
                                           row["wait_event"])
                    window.backend_states[key] = window.backend_states.get(key, 0) + 1
                    if key == LOCK_WAIT:
                        waits = window.lock_waits_by_statement
                        waits[row["query"]] = waits.get(row["query"], 0) + 1
                await asyncio.sleep(SAMPLE_EVERY_S)
        finally:
            await asyncio.shield(connection.close())

    async def close(self) -> None:
        await self.http.close()


def describe_backend(state: str | None, wait_type: str | None, wait: str | None) -> str:
    if state == "active":
        if wait_type is None:
            return "running a statement"
        return LOCK_WAIT if wait_type == "Lock" else f"waiting: {wait_type}/{wait}"
    if state == "idle in transaction":
        return "in a transaction, waiting for the bot"
    return "idle between transactions"


async def run(ctx: Context) -> list[Figure]:
    seconds = 60.0 if ctx.mode.full else 10.0
    workload = (
        f"{JOBS} jobs in flight, each due every second (hour-long provider tasks, polling "
        f"only), one PostgreSQL schema, {seconds:g} s measured after a {WARM_UP_S:g} s warm-up"
    )
    targets = (f"two processes ≥ {TARGET_RATIO:g}× one",
               f"first poll of an orphaned job ≤ {TARGET_FAILOVER_S:g} s after the kill")
    url = server_url()
    if why := await unreachable(url):
        ctx.log(f"    skipped: {why}")
        return [skipped_figure("8a", NAME_THROUGHPUT, workload, targets[0], why),
                skipped_figure("8b", NAME_FAILOVER, "kill -9 during 8a", targets[1], why)]
    workdir = ctx.subdir("cluster")
    try:
        async with throwaway_schema(url, "kling_bench") as schema, Children(workdir) as children:
            sim = await children.start(
                "EvoLink simulator",
                python_module("sandbox.evolink_sim", "--port", "0", "--api-key", API_KEY,
                              "--time-scale", "1", "--credits", "1000000000"),
                bench_child_env(), "evolink-sim.log",
            )
            cluster = Cluster(ctx, children, schema, sim,
                              await sim.ready_line(parse_simulator_line, 20.0))
            try:
                load, began = load_average(), time.monotonic()
                single, info = await cluster.start_node(None, seed=JOBS)
                ctx.log(f"    {JOBS} jobs seeded in {time.monotonic() - began:.1f} s")
                await asyncio.sleep(WARM_UP_S)
                one = await cluster.measure([single], seconds)
                ctx.log(f"    one process: {json.dumps(one.to_json())}")
                await single.stop()
                (first, _), (second, _) = await asyncio.gather(
                    cluster.start_node(0), cluster.start_node(1)
                )
                await asyncio.sleep(WARM_UP_S)
                two = await cluster.measure([first, second], seconds)
                ctx.log(f"    two processes: {json.dumps(two.to_json())}")
                failover = await measure_failover(schema, first, float(info["lease_s"]),
                                                  cluster.http, cluster.sim_url)
                ctx.log(f"    failover: {failover}")
            finally:
                await cluster.close()
    except Exception as error:
        return [error_figure("8a", NAME_THROUGHPUT, workload, targets[0], error)]
    return [
        throughput_figure(workload, targets[0], one, two, load=load, info=info),
        failover_figure(targets[1], failover),
    ]


def _share(window: Window, state: str) -> float:
    total = sum(window.backend_states.values())
    return window.backend_states.get(state, 0) / total if total else 0.0


def throughput_figure(workload: str, target: str, one: Window, two: Window, *, load: float,
                      info: dict[str, Any]) -> Figure:
    ratio = two.polls_per_s / one.polls_per_s
    cores = two.cpu["machine capacity"] / two.seconds
    slots = int(info["concurrency"])

    def bots(window: Window) -> float:
        return sum(v for k, v in window.cpu.items() if k.startswith("bot process"))

    per_poll = {
        "bot": bots(one) / one.polls,
        "postgres": one.cpu["postgres backends of the bots"] / one.polls,
        "simulator": one.cpu["simulator"] / one.polls,
    }
    # Every poll costs this much CPU somewhere on the machine: its cores cap the polls.
    ceiling = cores / sum(per_poll.values())
    # Two processes share the provider rate in the database: a statement more per call.
    cpu_two = (bots(two) + two.cpu["postgres backends of the bots"] + two.cpu["simulator"])
    cpu_two_per_poll = cpu_two / two.polls
    busy = two.cpu["machine, all processes"] / two.cpu["machine capacity"]
    accounted = bots(two) + two.cpu["simulator"] + two.cpu["postgres server, all clients"]
    others = (two.cpu["machine, all processes"] - accounted) / two.seconds
    locks = _share(two, LOCK_WAIT)
    cost = ", ".join(f"{name} {seconds * 1000:.2f} ms" for name, seconds in per_poll.items())
    # A process runs `slots` polls at once: each took this long from lease to reschedule.
    wall_one, wall_two = slots / one.polls_per_s, 2 * slots / two.polls_per_s
    core_one, core_two = bots(one) / one.seconds, bots(two) / two.seconds / 2
    limit = None
    if ratio < TARGET_RATIO:
        limit = (
            f"the machine: {busy:.0%} of its {cores:.0f} cores were busy ({others:.2f} cores "
            f"by other work; load average {load:.1f} before the run). A bot process used "
            f"{core_one:.0%} of a core alone and {core_two:.0%} each of two: each of its "
            f"{slots} slots took {wall_one * 1000:.0f} ms per poll ({wall_two * 1000:.0f} ms "
            f"with two processes), of which {per_poll['bot'] * 1000:.1f} ms is its CPU; "
            "the rest is waiting for PostgreSQL, the simulator and a free core. Backends "
            f"waited for a lock in {locks:.1%} of samples. On CPU alone these cores would "
            f"allow {ceiling:.0f} polls/s, {ceiling / one.polls_per_s:.2f}× one process "
            f"({cost} per poll; with two processes {cpu_two_per_poll * 1000:.2f} ms in all, "
            "the shared rate bucket being one statement more per provider call)"
        )
    return Figure(
        figure="8a", name=NAME_THROUGHPUT, workload=workload,
        result=(f"2 processes: {two.polls_per_s:.0f} polls/s ({busy:.0%} of {cores:.0f} "
                f"cores busy; lock waits in {locks:.1%} of backend samples)"),
        baseline=f"1 process: {one.polls_per_s:.0f} polls/s (CPU per poll: {cost})",
        ratio=ratio, target=target, passed=ratio >= TARGET_RATIO,
        details={"one": one.to_json(), "two": two.to_json(), "load_before": load,
                 "ceiling_polls_per_s": round(ceiling, 1), "other_cores": round(others, 2),
                 "cpu_ms_per_poll_two": round(cpu_two_per_poll * 1000, 3),
                 "ms_per_poll_in_a_slot": [round(wall_one * 1000, 1),
                                           round(wall_two * 1000, 1)],
                 "bot_core_share": [round(core_one, 3), round(core_two, 3)], "node": info},
        limit=limit,
    )
