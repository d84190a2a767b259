"""Pure pieces of the EvoLink simulator and the media sample helpers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.evolink_sim import MODELS
from sandbox.evolink_sim.clock import SimClock
from sandbox.evolink_sim.errors import error_body
from sandbox.evolink_sim.media_check import is_iso_bmff, sniff_image
from sandbox.evolink_sim.netguard import classify_host
from sandbox.evolink_sim.validation import callback_url_problem
from sandbox.media_samples import (
    make_gif,
    make_jpeg,
    make_mp4,
    make_mp4_bytes,
    make_png,
    make_webp,
    pad_file,
    probe_video,
)

STANDARD = MODELS["kling-o1-video-edit"]
FAST = MODELS["kling-o1-video-edit-fast"]


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("localhost", "loopback"),
        ("LOCALHOST.", "loopback"),
        ("api.localhost", "loopback"),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("127.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "private"),
        ("100.64.0.1", "private"),
        ("0.0.0.0", "private"),
        ("fc00::1", "private"),
        ("fe80::1", "private"),
        ("224.0.0.1", "private"),
        ("", "private"),
        ("8.8.8.8", "public"),
        ("2606:4700::1111", "public"),
        ("172.32.0.1", "public"),
        ("hooks.example.com", "name"),
        ("cafe.de", "name"),
    ],
)
def test_classify_host(host: str, kind: str) -> None:
    assert classify_host(host) == kind


@pytest.mark.parametrize(
    ("url", "insecure", "ok"),
    [
        ("https://hooks.example.com/cb", False, True),
        ("http://hooks.example.com/cb", False, False),
        ("http://127.0.0.1:8080/cb", True, True),
        ("http://localhost/cb", True, True),
        ("http://10.0.0.5/cb", True, False),
        ("https://[fd00::5]/cb", False, False),
        ("ftp://hooks.example.com/cb", True, False),
        ("https:///nohost", False, False),
        ("https://h.example.com/" + "x" * 2030, False, False),
    ],
)
def test_callback_url_rules(url: str, insecure: bool, ok: bool) -> None:
    assert (callback_url_problem(url, allow_insecure=insecure) is None) is ok


@pytest.mark.parametrize(
    ("duration", "standard", "fast"),
    [
        (0.5, 36, 40.8),
        (3.0, 36, 40.8),
        (3.2, 48, 40.8),
        (6.0, 72, 40.8),
        (9.99, 120, 68),
        (10.04, 120, 74.8),
        (19.5, 120, 136),
        (25.0, 120, 136),
    ],
)
def test_billing_clamps_ceiled_seconds(duration: float, standard: float, fast: float) -> None:
    assert STANDARD.credits_for(duration) == standard
    assert FAST.credits_for(duration) == pytest.approx(fast)


def test_duration_range_has_a_small_tolerance() -> None:
    assert STANDARD.accepts_duration(2.96) and STANDARD.accepts_duration(10.05)
    assert not STANDARD.accepts_duration(2.94) and not STANDARD.accepts_duration(10.06)
    assert FAST.accepts_duration(6.0) and not FAST.accepts_duration(5.5)


def test_error_bodies_for_undocumented_statuses() -> None:
    assert error_body("create", 418, "current") == {
        "error": {"code": "http_418", "message": "I'm a Teapot", "type": "invalid_request_error"}
    }
    assert error_body("query", 504, "legacy")["error"]["code"] == 504


def test_sniffers() -> None:
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image(b"\x89PNG\r\n\x1a\nrest") == "png"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_image(b"GIF89a") is None
    assert is_iso_bmff(b"\x00\x00\x00\x18ftypisom\x00\x00")
    assert not is_iso_bmff(b"\x1aE\xdf\xa3webm-ebml-header")


async def test_clock_scales_jumps_and_wakes_sleepers() -> None:
    clock = SimClock(time_scale=0)
    start = clock.now()
    sleeper = asyncio.create_task(clock.sleep_until(start + 100))
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(60)
    await asyncio.sleep(0)
    assert not sleeper.done() and clock.now() == pytest.approx(start + 60)
    clock.time_scale = 1e6  # the remaining 40 s now pass in ~40 µs
    await asyncio.wait_for(sleeper, 5)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.time_scale = -2


def test_media_samples_are_real_media(tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "a.mp4", 3.5, width=48, height=32, fps=30)
    info = probe_video(clip)
    assert (info.duration_s, info.width, info.height, info.has_audio) == (3.5, 48, 32, False)
    mov = make_mp4(tmp_path / "b.mov", 6, container="mov", with_audio=True, codec="mpeg4")
    assert probe_video(mov).has_audio and probe_video(mov).duration_s == pytest.approx(6, abs=0.05)
    assert mov.read_bytes()[4:12] == b"ftypqt  "
    assert probe_video(make_mp4_bytes(4)).duration_s == 4
    assert make_png(tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert make_jpeg(tmp_path / "a.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    assert make_webp(tmp_path / "a.webp").read_bytes()[8:12] == b"WEBP"
    assert make_gif(tmp_path / "a.gif").read_bytes().startswith(b"GIF8")
    padded = pad_file(tmp_path / "big.png", 5000, source=tmp_path / "a.png")
    assert padded.stat().st_size == 5000 and sniff_image(padded.read_bytes()) == "png"
    with pytest.raises(ValueError):
        make_mp4(tmp_path / "odd.mp4", 1, width=33)
