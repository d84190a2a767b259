"""The cutting rules: which part of a clip is edited, and every `start` that cannot be."""

from __future__ import annotations

import math

import pytest

from bot.evolink.spec import MODEL_SPECS, EditModel
from bot.media.errors import MediaRejected, format_clock
from bot.media.info import VideoInfo
from bot.media.sniff import MediaKind
from bot.media.validation import ClipRules, CutPlan, check_start, check_video, plan_cut

STANDARD = ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD])  # edits 3–10 s
FAST = ClipRules.for_model(MODEL_SPECS[EditModel.FAST])  # edits 6–20 s


@pytest.mark.parametrize("start", [-0.5, -1e308, math.nan, math.inf, -math.inf, 600.5, 1e300])
def test_a_start_that_is_no_second_of_a_clip_is_refused_before_anything_is_fetched(
    start: float,
) -> None:
    with pytest.raises(MediaRejected) as caught:
        check_start(start, STANDARD)
    assert caught.value.code == "start_invalid"
    assert caught.value.reason == (
        "`start` is the second of your clip the edit begins at: a number from 0 to 600 "
        "(e.g. 12 or 12.5)."
    )


@pytest.mark.parametrize("start", [0.0, 12.5, 600.0])
def test_any_second_of_the_longest_clip_is_a_valid_start(start: float) -> None:
    check_start(start, STANDARD)


def test_a_clip_that_fits_from_0_is_sent_whole() -> None:
    assert plan_cut(10.0, 0.0, STANDARD) is None
    assert plan_cut(2.0, 0.0, STANDARD) is None  # billed as the minimum, not cut


def test_a_long_clip_is_cut_to_the_models_maximum_from_its_start() -> None:
    assert plan_cut(25.0, 5.0, STANDARD) == CutPlan(start_s=5.0, length_s=10.0)
    assert plan_cut(40.0, 12.0, FAST) == CutPlan(start_s=12.0, length_s=20.0)
    # A tenth of a second too long is billed a whole second more: cut as well.
    assert plan_cut(10.1, 0.0, STANDARD) == CutPlan(start_s=0.0, length_s=10.0)


def test_a_long_clip_is_cut_to_its_end_when_less_than_the_maximum_is_left() -> None:
    assert plan_cut(25.0, 20.0, STANDARD) == CutPlan(start_s=20.0, length_s=5.0)


def test_a_start_in_a_clip_that_fits_cuts_from_there() -> None:
    assert plan_cut(8.0, 3.0, STANDARD) == CutPlan(start_s=3.0, length_s=5.0)


@pytest.mark.parametrize(
    ("duration", "start", "reason"),
    [
        (40.0, 45.0, "Your clip is 0:40 long; `start` 0:45 is past its end. Choose a start "
         "at or before 0:37."),
        (40.0, 40.0, "Your clip is 0:40 long; `start` 0:40 is past its end. Choose a start "
         "at or before 0:37."),
        (2.0, 2.5, "Your clip is 0:02 long; `start` 0:02.5 is past its end. Choose a start "
         "at or before 0:00."),
    ],
)
def test_a_start_past_the_clips_end_is_refused_saying_the_clips_length(
    duration: float, start: float, reason: str
) -> None:
    with pytest.raises(MediaRejected) as caught:
        plan_cut(duration, start, STANDARD)
    assert (caught.value.code, caught.value.reason) == ("start_past_end", reason)


def test_a_start_leaving_less_than_the_models_minimum_is_refused() -> None:
    with pytest.raises(MediaRejected) as caught:
        plan_cut(40.0, 38.5, STANDARD)
    assert (caught.value.code, caught.value.reason) == (
        "start_leaves_too_little",
        "Your clip is 0:40 long; from `start` 0:38.5 only 1.5 s are left, and this model "
        "edits at least 3 s. Choose a start at or before 0:37.",
    )
    with pytest.raises(MediaRejected, match="this model edits at least 6 s"):
        plan_cut(40.0, 35.0, FAST)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0:00"), (12, "0:12"), (72, "1:12"), (12.5, "0:12.5"), (9.96, "0:10"), (600, "10:00")],
)
def test_points_in_a_clip_read_as_players_show_them(seconds: float, shown: str) -> None:
    assert format_clock(seconds) == shown


def test_a_clip_over_ten_minutes_is_refused_saying_its_length() -> None:
    info = VideoInfo(
        kind=MediaKind.MP4, duration_s=720.4, width=640, height=360, fps=30.0, has_audio=False,
        size_bytes=50_000_000,
    )
    with pytest.raises(MediaRejected) as caught:
        check_video(info, STANDARD)
    assert (caught.value.code, caught.value.reason) == (
        "video_too_long",
        "The clip is 12:00.4 long; the bot cuts parts from clips of up to 10:00. "
        "Trim it and try again.",
    )
