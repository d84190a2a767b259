"""The hostile corpus against the real bot process, measured from outside it (issue 12).

The bot runs as `python -m bot run` beside the Discord emulator and the EvoLink simulator,
three child processes started once for the module by the demo's own machinery
(`sandbox.demo`). Each case is one `/edit` by a member of its own (so no per-member limit
carries over from one case to the next) with a hostile file attached or a link to a hostile
https server in this process. The case ends when the member's answer shows up in the
emulator, and asserts:

- the edit is refused (`❌`) with that input's specific reason;
- the bot's resident set peaked at most 100 MB above where it was when the case began
  (`VmHWM`, see `tests/hostile/outside.py`);
- every `/livez` request (on the bot's loopback metrics listener) sent while the bot handled
  the input was answered 200 within 100 ms: the event loop never stalled longer than that.

The media files come from `tests/hostile_media.py`; the network attacks from
`tests/hostile/servers.py`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from sandbox.demo.processes import Children
from sandbox.demo.session import MEMBER, Demo
from sandbox.media_samples import make_mp4_bytes
from tests import hostile_media
from tests.hostile.outside import Cost, HealthSampler, ProcessWatch
from tests.hostile.servers import HostileServer, hostile_server

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90), pytest.mark.alone,
]

# The bounds, exactly.
MAX_RSS_GROWTH_BYTES = 100_000_000
MAX_LOOP_LAG_S = 0.100

ANSWER_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_S = 4.0  # the slow drip is cut off here
ATTACKERS = tuple(f"attacker{n:02d}" for n in range(24))
PROMPT = "make it look like a snowy winter evening"

Options = dict[str, Any]


@dataclass
class Corpus:
    demo: Demo
    server: HostileServer
    bot_pid: int
    livez_port: int  # the metrics listener's: the public one serves no /livez
    members: itertools.count[int]

    def next_member(self) -> str:
        return ATTACKERS[next(self.members)]

    async def attach(self, name: str, data: bytes, content_type: str) -> str:
        uploaded = await self.demo.emu.upload(name, data, content_type)
        return str(uploaded["id"])

    async def attempt(
        self, options: Options
    ) -> tuple[str, Cost]:
        """One `/edit` by a fresh member; returns the member's answer and what it cost."""
        info = self.demo.info
        member = info.members[self.next_member()]
        watch = ProcessWatch(self.bot_pid)
        sampler = HealthSampler(self.livez_port)
        await asyncio.to_thread(sampler.start)
        watch.start()
        try:
            interaction = await self.demo.emu.slash(
                info.guild_id, info.channels["general"], member, "edit",
                {"prompt": PROMPT, **options},
            )
            answer = await self.demo.transcript.wait_for(
                lambda snap: snap.final_answer(str(interaction["id"])),
                "the bot's answer to the hostile /edit", ANSWER_TIMEOUT_S,
            )
        finally:
            health = sampler.stop()
        return str(answer["content"]), watch.stop(health)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def corpus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Corpus]:
    workdir = tmp_path_factory.mktemp("hostile-corpus")
    with (workdir / "transcript.txt").open("w") as transcript:
        async with (
            hostile_server(workdir) as server,
            aiohttp.ClientSession() as session,
            Children(workdir) as children,
        ):
            demo = Demo(
                children=children, session=session, workdir=workdir, out_dir=workdir / "out",
                out=transcript, started=time.monotonic(),
                bot_env={
                    "SSL_CERT_FILE": str(server.ca_file),  # trust the hostile server
                    "DOWNLOAD_TIMEOUT_SECONDS": str(DOWNLOAD_TIMEOUT_S),
                },
                members=(MEMBER, *ATTACKERS),
            )
            try:
                yield await _started(demo, server)
                await demo.shutdown()
            finally:  # when setup or shutdown failed half-way (the runner does the same)
                watcher = getattr(demo, "transcript", None)
                if watcher is not None:
                    await watcher.stop()


async def _started(demo: Demo, server: HostileServer) -> Corpus:
    await demo.setup()
    bot = await demo.start_bot()
    assert bot.pid is not None
    corpus = Corpus(demo, server, bot.pid, demo.metrics_port, itertools.count())
    # Warm up what any first edit pays once (thread pools, decoders), so each case
    # measures the input alone: a clean clip, refused as too short once probed.
    clip = make_mp4_bytes(0.5, 320, 240)
    warm_up, _ = await corpus.attempt(
        {"video": await corpus.attach("warm-up.mp4", clip, "video/mp4")}
    )
    assert warm_up.startswith("❌"), warm_up
    return corpus


# --- the corpus ---------------------------------------------------------------------------

Build = Callable[[Corpus], Awaitable[Options]]


def _clip(make: Callable[[], bytes], name: str = "clip.mp4") -> Build:
    async def build(corpus: Corpus) -> Options:
        return {"video": await corpus.attach(name, make(), "video/mp4")}

    return build


def _image(make: Callable[[], bytes]) -> Build:
    async def build(corpus: Corpus) -> Options:
        clip = corpus.demo.samples.clip.read_bytes()  # a clean clip: the image is the attack
        return {
            "video": await corpus.attach("clip.mp4", clip, "video/mp4"),
            "image1": await corpus.attach("reference.png", make(), "image/png"),
        }

    return build


def _link(path: str) -> Build:
    async def build(corpus: Corpus) -> Options:
        return {"video_url": corpus.server.url(path)}

    return build


def _bomb(samples: int) -> Callable[[], bytes]:
    return lambda: hostile_media.sample_count_bomb(samples)


UNREADABLE = "could not be read"
RANGE = "more than a 10-minute clip can have"  # the longest clip the bot cuts from


def case(case_id: str, build: Build, *expected: str) -> Any:
    """One hostile input and the fragments its refusal must contain."""
    return pytest.param(build, expected, id=case_id)


CASES = [
    # Media, attached as a member would.
    case("sample-count-bomb-1M", _clip(_bomb(1_000_000)), "1,000,000 frames", RANGE),
    case("sample-count-bomb-10M", _clip(_bomb(10_000_000)), "10,000,000 frames", RANGE),
    case("sample-count-bomb-60M", _clip(_bomb(60_000_000)), "60,000,000 frames", RANGE),
    # 50 M samples declared in one fragment (moof) of a few hundred bytes.
    case("fragmented-sample-count-bomb",
         _clip(lambda: hostile_media.fragmented_clip(50_000_000)), "50,000,000 frames", RANGE),
    case("huge-dimensions", _clip(hostile_media.huge_dimensions_clip), "60000×60000 px",
         "at most 4096 px"),
    case("truncated", _clip(hostile_media.truncated_clip), UNREADABLE),
    case("lying-duration", _clip(hostile_media.lying_duration_clip), UNREADABLE, "incomplete"),
    case("polyglot", _clip(hostile_media.polyglot_clip), UNREADABLE),
    # 10,000 one-picture packets in 10 s: refused from the index, before any is read.
    case("1000-tiny-packets-per-second", _clip(hostile_media.tiny_packet_clip),
         "1,000 frames per second", "at most 240"),
    case("pixel-bomb-reference-image", _image(hostile_media.pixel_bomb_png),
         "Reference image 1", "too many pixels"),
    # Links to hostile servers.
    case("gzip-bomb-link", _link("/gzip-bomb.mp4"), "the server sent it compressed"),
    case("redirect-loop-link", _link("/loop/a.mp4"), "redirects in a loop"),
    case("content-length-too-small-link", _link("/length-too-small.mp4"),
         "the server sent a broken response"),
    case("content-length-too-large-link", _link("/length-too-large.mp4"), "connection broke off"),
    # One byte a second never trips the read timeout; DOWNLOAD_TIMEOUT_SECONDS cuts it off.
    case("slow-drip-link", _link("/slow-drip.mp4"), "took too long"),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
async def test_hostile_input_is_refused_at_a_bounded_cost(
    corpus: Corpus, build: Build, expected: tuple[str, ...]
) -> None:
    options = await build(corpus)
    try:
        answer, cost = await corpus.attempt(options)
    finally:
        corpus.server.drop_connections()  # a dripping answer must not outlive its case

    assert answer.startswith("❌"), answer
    for fragment in expected:
        assert fragment in answer, (fragment, answer)
    growth, slowest, unhealthy = cost.rss_growth_bytes, cost.worst_health_s, cost.unhealthy
    assert growth <= MAX_RSS_GROWTH_BYTES, cost.describe()
    assert not unhealthy, cost.describe()
    assert slowest <= MAX_LOOP_LAG_S, cost.describe()
