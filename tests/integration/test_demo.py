"""The demo end to end: three real child processes, a delivered video, nothing left running."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sandbox.demo import SCENARIOS, DemoError, DemoResult, main, run_demo
from sandbox.demo.scenarios import Scenario
from sandbox.demo.session import Demo
from sandbox.media_samples import probe_video
from tests.conftest import TEST_DATABASE_URL_ENV

pytestmark = pytest.mark.timeout(60)


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def assert_all_gone(pids: list[int]) -> None:
    assert pids, "the demo started no processes"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # each child led its own process group; nothing of it remains


async def test_happy_demo_saves_a_playable_video_and_stops_every_process(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    result = DemoResult("happy")
    await run_demo("happy", tmp_path / "out", out=out, result=result, workdir_parent=tmp_path)

    transcript = out.getvalue()
    [saved] = result.saved
    assert saved == tmp_path / "out" / "kling-edit-1.mp4"
    info = probe_video(saved)
    assert info.duration_s > 0 and "mp4" in info.format_name
    assert len(result.child_pids) == 3  # emulator, simulator, bot
    assert_all_gone(result.child_pids)
    assert result.workdir is None  # removed after a successful run
    assert entries(tmp_path) == ["out"]

    assert "Kling is thinking" in transcript  # the deferral
    assert "(edited)" in transcript and "%" in transcript  # the progress bar moving
    assert "your edit #1 is ready! 📎 kling-edit-1.mp4" in transcript
    assert "bot exited cleanly on SIGTERM (code 0" in transcript
    assert "#1 delivered" in transcript
    assert "passed" in transcript


async def test_a_failing_step_stops_every_process_and_says_what_was_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(demo: Demo) -> None:
        await demo.start_bot()
        await demo.transcript.wait_for(lambda s: None, "something that never happens", 0.2)

    monkeypatch.setitem(SCENARIOS, "stuck", Scenario("stuck", "t", "s", stuck))
    out = io.StringIO()
    result = DemoResult("stuck")
    with pytest.raises(DemoError, match="timed out after 0 s waiting for something that"):
        await run_demo(
            "stuck", tmp_path / "out", out=out, result=result, workdir_parent=tmp_path
        )

    assert len(result.child_pids) == 3
    assert_all_gone(result.child_pids)
    assert result.workdir is not None and (result.workdir / "bot.log").exists()
    assert f"Logs and data were kept in {result.workdir}" in out.getvalue()


async def test_sigterm_mid_edit_loses_nothing_and_the_restarted_bot_delivers_once(
    tmp_path: Path,
) -> None:
    """A real SIGTERM to the bot process mid-edit, then a fresh process on the same data."""
    out = io.StringIO()
    result = DemoResult("restart")
    await run_demo("restart", tmp_path / "out", out=out, result=result, workdir_parent=tmp_path)
    transcript = out.getvalue()
    assert "bot exited cleanly on SIGTERM (code 0" in transcript
    assert "checked: one thread, one status message, one delivered file, one provider task" in (
        transcript
    )
    [saved] = result.saved
    assert probe_video(saved).duration_s > 0
    assert_all_gone(result.child_pids)


async def test_the_cluster_demo_kills_one_process_and_the_other_delivers_every_edit(
    tmp_path: Path,
) -> None:
    if not os.environ.get(TEST_DATABASE_URL_ENV):
        pytest.skip(f"the cluster scenario needs PostgreSQL: set {TEST_DATABASE_URL_ENV}")
    out = io.StringIO()
    result = DemoResult("cluster")
    await run_demo("cluster", tmp_path / "out", out=out, result=result, workdir_parent=tmp_path)

    transcript = out.getvalue()
    assert "runs shards 0,1" in transcript and "runs shards 2,3" in transcript
    assert "kill -9 bot process 1" in transcript
    for job_id in range(1, 5):
        assert f"your edit #{job_id} is ready!" in transcript
    assert "checked: 4 edits, 4 provider tasks, each delivered once and settled once" in (
        transcript
    )
    # emulator, simulator, sync-commands, two bot processes
    assert len(result.child_pids) == 5
    assert_all_gone(result.child_pids)


def test_without_postgresql_the_cluster_demo_says_how_to_point_it_at_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_URL", TEST_DATABASE_URL_ENV):
        monkeypatch.delenv(name, raising=False)

    code = main("cluster")

    err = capsys.readouterr().err
    assert code == 1
    assert "DATABASE_URL=postgresql://" in err and "docker run" in err
    assert "Traceback" not in err


def test_an_unreachable_postgresql_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://kling:s3cret@127.0.0.1:9/db")

    code = main("cluster")

    err = capsys.readouterr().err
    assert code == 1
    assert "postgresql://kling@127.0.0.1:9/db is not reachable" in err
    assert "s3cret" not in err and "Traceback" not in err
