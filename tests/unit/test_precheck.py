"""Refusals from the declared index alone: each track's samples, index and fragments
together, against its own bound."""

from __future__ import annotations

import pytest

from bot.evolink.spec import MODEL_SPECS, EditModel
from bot.media.errors import MediaRejected
from bot.media.mp4layout import Layout, Track
from bot.media.precheck import check_layout
from bot.media.validation import ClipRules

RULES = ClipRules.for_model(MODEL_SPECS[EditModel.STANDARD])
MAX_FRAMES = 600 * 240  # the longest clip the bot cuts from × the highest frame rate
MAX_AUDIO_SAMPLES = 600 * 96_000


def video(**fields: int) -> Track:
    return Track(handler=b"vide", codec=b"avc1", width=64, height=64, timescale=1000,
                 track_id=1, **fields)


def sound(**fields: int) -> Track:
    return Track(handler=b"soun", codec=b"mp4a", timescale=48_000, track_id=2, **fields)


def refusal_code(layout: Layout) -> str | None:
    try:
        check_layout(layout, RULES)
    except MediaRejected as refused:
        return refused.code
    return None


@pytest.mark.parametrize(
    ("layout", "code"),
    [
        # Index and fragments of one track add up.
        (Layout([video(samples=MAX_FRAMES, fragment_samples=1)]), "video_too_many_frames"),
        (Layout([video(fragment_samples=MAX_FRAMES)]), None),
        # Sound has its own, larger bound; it does not lend it to video.
        (Layout([video(fragment_samples=MAX_FRAMES + 1), sound()]), "video_too_many_frames"),
        (Layout([video(), sound(fragment_samples=MAX_AUDIO_SAMPLES)]), None),
        (Layout([video(), sound(samples=1, fragment_samples=MAX_AUDIO_SAMPLES)]),
         "video_too_many_frames"),
        # Samples of a track no trak lists are bounded as video.
        (Layout([video(), sound()], unlisted_fragment_samples=MAX_FRAMES + 1),
         "video_too_many_frames"),
        (Layout([video()], unlisted_fragment_samples=MAX_FRAMES), None),
    ],
)
def test_each_track_is_bounded_by_its_own_bound(layout: Layout, code: str | None) -> None:
    assert refusal_code(layout) == code


@pytest.mark.parametrize(
    ("track", "code"),
    [
        # 10 s of fragments at 300 fps, at 60 fps, and both halves in index and fragments.
        (video(fragment_samples=3000, fragment_duration=10_000), "video_frame_rate_too_high"),
        (video(fragment_samples=600, fragment_duration=10_000), None),
        (video(samples=1500, stts_duration=5000, fragment_samples=1500,
               fragment_duration=5000), "video_frame_rate_too_high"),
        # No declared durations: the rate cannot be measured; the sample bound still holds.
        (video(fragment_samples=3000), None),
    ],
)
def test_the_frame_rate_counts_fragments(track: Track, code: str | None) -> None:
    assert refusal_code(Layout([track])) == code
