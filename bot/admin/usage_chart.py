"""The usage chart of `/kling-admin usage`: spent seconds per UTC day, stacked by the top
members (by display name) plus everyone else, with the server's budget per day as a line.

`daily_usage` builds the series from exactly the jobs and spent flags the CSV is written from
(`reports.spent_seconds` decides both), and `render_usage_png` draws it with matplotlib's
object API on the Agg canvas (no pyplot: no global figure state shared between renders). It
is CPU work, so callers run it in a thread (AdminService.usage); the per-day totals go into
the PNG's tEXt metadata, so what was plotted can be read back and compared with the CSV.
"""

from __future__ import annotations

import calendar
import io
import json
from collections import defaultdict
from collections.abc import Callable, Container, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import MaxNLocator

from bot.admin.models import Period
from bot.admin.reports import spent_seconds
from bot.i18n import N_, Text, english
from storage.models import Job

TOP_MEMBERS: Final = 5
# The longest period a chart covers (a quarter and some): beyond it bars become unreadable
# and the picture grows; the admin periods are at most a month.
MAX_DAYS: Final = 93
# The PNG tEXt keys holding {"YYYY-MM-DD": spent seconds} of every plotted day, and the
# legend's labels in stacking order (what the picture says, readable without looking at it).
TOTALS_KEY: Final = "kling:daily-totals"
LEGEND_KEY: Final = "kling:legend"
_SIZE_INCHES: Final = (9.0, 4.5)
_DPI: Final = 100
_MAX_DATE_LABELS: Final = 16
_HALF_BAR: Final = 0.4  # of a day's width
_TITLES: Final = {
    Period.DAY: N_("Billed seconds per day, this day (UTC)"),
    Period.WEEK: N_("Billed seconds per day, this week (UTC)"),
    Period.MONTH: N_("Billed seconds per day, this month (UTC)"),
}
_AXIS: Final = N_("billed seconds")
_BUDGET: Final = N_("budget per day\n(monthly ÷ days)")
_EMPTY: Final = N_("No billed seconds in this period")
_OTHERS: Final = N_("everyone else")


@dataclass(frozen=True)
class ChartWords:
    """The chart's words in the moderator's language, and its members' names."""

    title: str
    axis: str
    budget: str
    empty: str
    others: str
    members: Mapping[int, str]  # the legend's label of each top member

    @classmethod
    def for_reader(
        cls, period: Period, say: Callable[[Text], str], names: Mapping[int, str | None]
    ) -> ChartWords:
        """In `say`'s language when the chart's font has its letters (Matplotlib's bundled
        DejaVu Sans has no Japanese, which would draw as empty boxes), else in English; a
        member by `names` (their display name) as far as it can be drawn, else by number."""
        texts = (_TITLES[period], _AXIS, _BUDGET, _EMPTY, _OTHERS)
        words = [say(text) for text in texts]
        if not _drawable("".join(words)):
            say = english
            words = [say(text) for text in texts]
        members = {
            member: _drawable_name(name) or say(N_("member {id}", id=str(member)))
            for member, name in names.items()
        }
        title, axis, budget, empty, others = words
        return cls(title, axis, budget, empty, others, members)


def _charmap() -> Container[int]:
    return FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap()


def _drawable(letters: str) -> bool:
    charmap = _charmap()
    return all(ord(letter) in charmap for letter in letters if not letter.isspace())


def _drawable_name(name: str | None) -> str | None:
    """The name without what the font cannot draw (an emoji beside a name goes, the name
    stays); None when no letter or digit would be left."""
    if not name:
        return None
    charmap = _charmap()
    kept = " ".join("".join(c for c in name if ord(c) in charmap).split())
    return kept if any(c.isalnum() for c in kept) else None


@dataclass(frozen=True)
class DailyUsage:
    days: tuple[date, ...]
    # (member id, seconds per day): the top members, biggest first, then everyone else
    # (None) if any.
    stacks: tuple[tuple[int | None, tuple[int, ...]], ...]
    # The server's monthly budget shared over each day's month (seconds per day).
    budget_per_day: tuple[float, ...]

    @property
    def members(self) -> tuple[int, ...]:
        """The top members, in the order they are stacked."""
        return tuple(member for member, _ in self.stacks if member is not None)

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(values[day] for _, values in self.stacks)
                     for day in range(len(self.days)))


def _utc_day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def period_days(since: float, until: float) -> tuple[date, ...]:
    """The UTC days of [since, until), at most MAX_DAYS (raises ValueError beyond)."""
    first, last = _utc_day(since), _utc_day(until - 1e-6)
    count = (last - first).days + 1
    if not 0 < count <= MAX_DAYS:
        raise ValueError(f"a chart covers 1 to {MAX_DAYS} days, not {count}")
    return tuple(first + timedelta(days=offset) for offset in range(count))


def daily_usage(
    jobs: Sequence[Job], spent_ids: Set[int], *, since: float, until: float, monthly_budget: int,
) -> DailyUsage:
    days = period_days(since, until)
    index = {day: position for position, day in enumerate(days)}
    per_member: dict[int, list[int]] = defaultdict(lambda: [0] * len(days))
    for job in jobs:
        seconds = spent_seconds(job, spent_ids)
        if seconds:
            per_member[job.user_id][index[_utc_day(job.created_at)]] += seconds
    ranked = sorted(per_member.items(), key=lambda item: (-sum(item[1]), item[0]))
    stacks: list[tuple[int | None, tuple[int, ...]]] = [
        (user_id, tuple(values)) for user_id, values in ranked[:TOP_MEMBERS]
    ]
    rest = [values for _, values in ranked[TOP_MEMBERS:]]
    if rest:
        stacks.append((None, tuple(sum(day) for day in zip(*rest, strict=True))))
    budget = tuple(monthly_budget / calendar.monthrange(day.year, day.month)[1] for day in days)
    return DailyUsage(days=days, stacks=tuple(stacks), budget_per_day=budget)


def render_usage_png(usage: DailyUsage, words: ChartWords) -> bytes:
    """The chart as PNG bytes; blocking CPU work (run it off the event loop)."""
    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = range(len(usage.days))
    # One collection of rectangles per stack: a patch per bar (axes.bar) costs ten times
    # more to build and draw at 93 days × 6 stacks.
    bottom = [0] * len(usage.days)
    labels = [words.others if member is None else words.members.get(member, str(member))
              for member, _ in usage.stacks]
    for index, (label, (_, values)) in enumerate(zip(labels, usage.stacks, strict=True)):
        bars = [[(x - _HALF_BAR, low), (x - _HALF_BAR, low + value),
                 (x + _HALF_BAR, low + value), (x + _HALF_BAR, low)]
                for x, low, value in zip(positions, bottom, values, strict=True) if value]
        axes.add_collection(PolyCollection(bars, facecolors=f"C{index}", label=label))
        bottom = [below + value for below, value in zip(bottom, values, strict=True)]
    axes.plot(positions, usage.budget_per_day, drawstyle="steps-mid", color="black",
              linestyle="--", linewidth=1.2, label=words.budget)
    if not usage.stacks:
        axes.text(0.5, 0.5, words.empty, transform=axes.transAxes,
                  ha="center", va="center")
    axes.set_xlim(-1, len(usage.days))
    axes.set_ylim(0, max([*bottom, *usage.budget_per_day, 1]) * 1.08)
    axes.set_title(words.title)
    axes.set_ylabel(words.axis)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    step = max(1, -(-len(usage.days) // _MAX_DATE_LABELS))
    ticks = list(positions)[::step]
    axes.set_xticks(ticks, [usage.days[tick].strftime("%m-%d") for tick in ticks],
                    rotation=45, ha="right")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    totals = {day.isoformat(): total for day, total in zip(usage.days, usage.totals,
                                                           strict=True)}
    buffer = io.BytesIO()
    canvas.print_png(  # type: ignore[no-untyped-call]  # matplotlib leaves it untyped
        buffer, metadata={
            "Title": words.title, TOTALS_KEY: json.dumps(totals, sort_keys=True),
            LEGEND_KEY: json.dumps(labels, ensure_ascii=False),
        },
    )
    return buffer.getvalue()
