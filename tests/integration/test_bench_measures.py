"""The measuring code of bench figures 8 and 9 on tiny counts: it counts what it claims to
(no timing is asserted; the figures themselves are `make bench`'s)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bench import storage_cpu
from bench.postgres import shown, throwaway_schema, unreachable
from bench.proc_stats import client_ports, process_cpu
from tests.conftest import TEST_DATABASE_URL_ENV


def test_a_password_never_reaches_a_notice() -> None:
    assert shown("postgresql://bot:hunter2@db:5432/x") == "postgresql://bot@db:5432/x"
    assert shown("postgresql://db/x") == "postgresql://db/x"


async def test_a_server_that_is_not_there_is_named_without_waiting_forever() -> None:
    why = await unreachable("postgresql://postgres@127.0.0.1:1/test")
    assert why is not None and "127.0.0.1:1" in why


async def test_every_hot_call_runs_its_count_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_cpu, "JOBS", 30)
    monkeypatch.setattr(storage_cpu, "CALLS", 5)
    result = await storage_cpu.measure(tmp_path / "kling.sqlite3", None, None)
    assert set(result) == {"lease due jobs", "record a poll", "transition",
                           "provider rate token"}
    assert all(figures["server_ms"] == 0.0 for figures in result.values())
    assert all(figures["client_ms"] >= 0.0 for figures in result.values())


async def test_a_backend_of_this_process_is_found_by_its_port() -> None:
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"{TEST_DATABASE_URL_ENV} is not set")
    async with throwaway_schema(url, "kling_test_bench") as schema:
        ports = client_ports(os.getpid())
        backend = await schema.connection.fetchval("SELECT pg_backend_pid()")
        port = await schema.connection.fetchval(
            "SELECT client_port FROM pg_stat_activity WHERE pid = $1", backend
        )
        assert port in ports
        before = process_cpu(backend)
        await schema.connection.execute("SELECT count(*) FROM generate_series(1, 3000000)")
        assert process_cpu(backend) > before
        name = schema.name
    admin = await asyncpg.connect(url)
    try:
        assert not await admin.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name
        )
    finally:
        await admin.close()
