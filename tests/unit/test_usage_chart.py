"""The usage chart's series and picture: the top members (by name) plus everyone else, only
spent seconds, every day of the period, bounded in days and in size however many members
there are."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from PIL import Image

from bot.admin.models import Period
from bot.admin.usage_chart import (
    LEGEND_KEY,
    MAX_DAYS,
    TOP_MEMBERS,
    TOTALS_KEY,
    ChartWords,
    daily_usage,
    render_usage_png,
)
from bot.i18n import Catalogs, english
from storage.models import Job, JobState
from tests.unit.test_public_texts import job_with

DAY = 86_400.0
START = datetime(2027, 1, 1, tzinfo=UTC).timestamp()  # January: 31 days
# A chart for Discord: small enough to attach anywhere, whatever the data.
MAX_PNG_BYTES = 300_000


def job(job_id: int, user_id: int, day: int, seconds: int) -> Job:
    """A delivered job of `seconds` billed seconds created on January's day `day` + 1."""
    base = job_with("make it snow")
    return base.model_copy(update={
        "id": job_id, "user_id": user_id, "state": JobState.DELIVERED,
        "created_at": START + day * DAY + 3600, "billed_seconds": seconds,
    })


def many_members(days: int, members: int) -> list[Job]:
    """Member m spends m % 10 + 1 s a day: the biggest spenders are those with m % 10 == 9."""
    return [job(d * members + m, 1000 + m, d, m % 10 + 1)
            for d in range(days) for m in range(members)]


def test_the_top_members_are_stacked_and_everyone_else_is_others() -> None:
    jobs = many_members(days=3, members=40)
    usage = daily_usage(jobs, {j.id for j in jobs}, since=START, until=START + 3 * DAY,
                        monthly_budget=3100)
    stacked = [member for member, _ in usage.stacks]
    assert len(stacked) == TOP_MEMBERS + 1 and stacked[-1] is None  # everyone else
    # The biggest spenders (10 s a day), ties by id.
    assert usage.members == tuple(1000 + m for m in (9, 19, 29, 39, 8))
    assert usage.totals == (sum(m % 10 + 1 for m in range(40)),) * 3
    assert usage.budget_per_day == (100.0, 100.0, 100.0)  # 3100 s over January's 31 days


def test_only_spent_jobs_count_and_every_day_of_the_period_is_plotted() -> None:
    kept, refunded = job(1, 7, 2, 10), job(2, 7, 3, 9)
    usage = daily_usage([kept, refunded], {kept.id}, since=START, until=START + 7 * DAY,
                        monthly_budget=0)
    assert len(usage.days) == 7 and usage.totals == (0, 0, 10, 0, 0, 0, 0)
    assert usage.members == (7,)


def test_a_period_longer_than_the_bound_is_refused() -> None:
    with pytest.raises(ValueError, match=f"1 to {MAX_DAYS} days"):
        daily_usage([], set(), since=START, until=START + (MAX_DAYS + 1) * DAY,
                    monthly_budget=0)


@pytest.mark.parametrize("members", [0, 1, 300])
def test_ninety_days_of_many_members_make_a_small_png_carrying_its_totals(members: int) -> None:
    jobs = many_members(days=90, members=members)
    usage = daily_usage(jobs, {j.id for j in jobs}, since=START, until=START + 90 * DAY,
                        monthly_budget=6000)
    png = render_usage_png(usage, ChartWords.for_reader(Period.MONTH, english, {}))
    assert len(png) < MAX_PNG_BYTES
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG" and image.size == (900, 450)
        plotted = json.loads(image.info[TOTALS_KEY])
    assert len(plotted) == 90
    assert sum(plotted.values()) == sum(j.billed_seconds or 0 for j in jobs)
    assert plotted == {day.isoformat(): total
                       for day, total in zip(usage.days, usage.totals, strict=True)}


def test_the_chart_reads_in_the_moderators_language_where_its_font_can_draw_it() -> None:
    catalogs = Catalogs()
    german = ChartWords.for_reader(Period.WEEK, catalogs.speaker("de"), {})
    assert german.title == "Abgerechnete Sekunden pro Tag, diese Woche (UTC)"
    assert german.empty == "Keine abgerechneten Sekunden in diesem Zeitraum"
    # The bundled font has no Japanese glyphs: English beats a chart of empty boxes.
    japanese = ChartWords.for_reader(Period.WEEK, catalogs.speaker("ja"), {})
    assert japanese == ChartWords.for_reader(Period.WEEK, english, {})
    assert japanese.title == "Billed seconds per day, this week (UTC)"
    usage = daily_usage([], set(), since=START, until=START + 7 * DAY, monthly_budget=0)
    with Image.open(io.BytesIO(render_usage_png(usage, german))) as image:
        assert image.info["Title"] == german.title


def legend_of(png: bytes) -> list[str]:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        legend: list[str] = json.loads(image.info[LEGEND_KEY])
    return legend


def test_the_legend_names_the_top_members_and_everyone_else_in_the_readers_language() -> None:
    jobs = many_members(days=2, members=7)  # members 1005 and 1006 spend most, then 1004 …
    usage = daily_usage(jobs, {j.id for j in jobs}, since=START, until=START + 2 * DAY,
                        monthly_budget=0)
    names: dict[int, str | None] = {
        1006: "Ada", 1005: "Zoë ✨", 1004: None, 1003: "山田", 1002: "Bob",
    }
    assert usage.members == tuple(names)
    french = ChartWords.for_reader(Period.MONTH, Catalogs().speaker("fr"), names)
    # What the chart's font cannot draw is left out of a name (the emoji); a member with
    # nothing drawable left, or whom nobody could name, goes by number.
    assert legend_of(render_usage_png(usage, french)) == [
        "Ada", "Zoë", "membre 1004", "membre 1003", "Bob", "tous les autres",
    ]
