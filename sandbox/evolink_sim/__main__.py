"""`python -m sandbox.evolink_sim --port 8199`: run the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .simulator import EvolinkSimulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.evolink_sim", description="Local EvoLink API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8199, help="0 picks a free port")
    parser.add_argument("--api-key", default="sk-evo-test", help="accepted Bearer key")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="provider seconds per real second"
    )
    parser.add_argument(
        "--insecure-callbacks",
        action="store_true",
        help="accept http:// and loopback callback URLs (EvoLink refuses them)",
    )
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="fetch input URLs on loopback (EvoLink cannot reach private hosts)",
    )
    parser.add_argument("--envelope", choices=("current", "legacy"), default="current")
    parser.add_argument(
        "--result-ttl", type=float, default=86400.0, help="result link lifetime, provider s"
    )
    parser.add_argument(
        "--task-retention", type=float, default=7 * 86400.0, help="task record lifetime"
    )
    parser.add_argument("--credits", type=float, default=100000.0, help="starting balance")
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    sim = EvolinkSimulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        result_ttl_s=args.result_ttl,
        task_retention_s=args.task_retention,
        allow_insecure_callbacks=args.insecure_callbacks,
        allow_private_urls=args.allow_private_urls,
        error_envelope=args.envelope,
        credits=args.credits,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not available on Windows
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"EvoLink simulator: {sim.base_url}", flush=True)
        print(f"API key: {sim.api_key}", flush=True)
        print(f"Control API: {sim.base_url}/_sim/stats", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
