"""The public web app, for any path a stranger can send: a 4xx, never a 500.

The real app from ``create_web_app`` with real SQLite, served from a thread of its own so
that hypothesis (synchronous) can send each generated request with a plain HTTP client.
"""

from __future__ import annotations

import asyncio
import http.client
import string
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.media.filework import FileWork
from bot.media.store import LocalMediaStore
from bot.metrics import Metrics
from bot.web import LoopLagMonitor, WebServices, create_web_app
from storage.database import Database
from storage.jobs import JobRepository
from storage.media import MediaRepository

# Any text, percent-encoded as a client would; or raw printable ASCII that is legal in a path
# (so '%', '..', '.' and unbalanced escapes reach the router as sent).
RAW = "".join(sorted(set(string.printable) - set(string.whitespace) - set("/?#")))
segment = st.one_of(
    st.text(max_size=40).map(lambda text: quote(text, safe="")),
    st.text(alphabet=RAW, max_size=40),
)


async def _serve(data: Path, files: FileWork, ready: threading.Event,
                 stop: asyncio.Event, port: list[int]) -> None:
    db = await Database.open(data / "kling.sqlite3")
    media = MediaRepository(db)

    async def hint(job_id: int, task_id: str | None) -> bool:
        return True

    app = create_web_app(
        WebServices(
            db=db, jobs=JobRepository(db), media=media,
            local_store=LocalMediaStore(data / "media", "http://127.0.0.1", media, files),
            on_callback=hint, lag=LoopLagMonitor(), metrics=Metrics(process_metrics=False),
        )
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port.append(runner.addresses[0][1])
    ready.set()
    await stop.wait()
    await runner.cleanup()
    await db.close()


@pytest.fixture(scope="module")
def web_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data = tmp_path_factory.mktemp("web")
    loop = asyncio.new_event_loop()
    ready, stop, port = threading.Event(), asyncio.Event(), list[int]()
    with FileWork.running() as files:
        thread = threading.Thread(
            target=loop.run_until_complete, args=(_serve(data, files, ready, stop, port),)
        )
        thread.start()
        assert ready.wait(30), "the web app did not start"
        yield port[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    loop.close()


def status_of(port: int, method: str, path: str, body: bytes = b"") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


ANY_4XX = range(400, 500)
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(job_id=segment, secret=segment)
def test_any_callback_path_is_refused_without_a_server_error(
    web_port: int, job_id: str, secret: str
) -> None:
    status = status_of(
        web_port, "POST", f"/callbacks/evolink/{job_id}/{secret}", b'{"id": "task-1"}'
    )
    assert status in ANY_4XX, (job_id, secret, status)


@FAST
@given(job_id=st.one_of(st.integers(-10**30, 10**30).map(str), st.text(
    alphabet="0123456789²³¹٣۳߃३০੩૩୩௩౩೩൩๓໓༣၃႓០᠓", min_size=1, max_size=30)))
def test_any_job_id_without_a_job_is_not_found(web_port: int, job_id: str) -> None:
    path = f"/callbacks/evolink/{quote(job_id)}/{'s' * 32}"
    assert status_of(web_port, "POST", path, b"{}") == 404, job_id


@FAST
@given(token=segment, name=segment)
def test_any_media_path_is_refused_without_a_server_error(
    web_port: int, token: str, name: str
) -> None:
    assert status_of(web_port, "GET", f"/m/{token}/{name}") in ANY_4XX
