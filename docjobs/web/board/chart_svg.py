"""The overview's activity chart laid out for SVG: axes, ticks, two lines, a legend, hover labels.

Completed and failed jobs per bucket are two lines on one count axis (the same unit,
so one scale reads true); run-time percentiles are another unit and stay out of the
drawing: they are each bucket's hover label, and the figures above the chart.
``overview.html`` draws the :class:`Drawing` with classes only (the page's CSP has no
inline styles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from docjobs.web.board import formats
from docjobs.web.board.charts import Activity, Bucket

#: The drawing's box in SVG units; the page scales it to its width.
WIDTH = 960
HEIGHT = 260
#: Room around the plot for the count labels (left), the time labels and title (bottom).
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 44
#: The count axis gets at most this many steps above zero.
MAX_COUNT_STEPS = 5


@dataclass(frozen=True)
class Tick:
    """A labelled position on an axis (``at``: x for time, y for counts)."""

    at: float
    label: str


@dataclass(frozen=True)
class Column:
    """One bucket's strip of the plot, whose hover label gives its numbers."""

    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Drawing:
    """Everything ``overview.html`` needs to draw the chart, in SVG units."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    count_ticks: list[Tick]
    time_ticks: list[Tick]
    completed_line: str
    completed_area: str
    failed_line: str
    columns: list[Column]
    count_title: str
    time_title: str
    empty: bool
    summary: str


def draw(activity: Activity) -> Drawing:
    """Lay out ``activity``: every bucket a point on each line, zeros included."""
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    peak = max((max(b.completed, b.failed) for b in activity.buckets), default=0)
    step, top_count = _count_scale(peak)
    slot = (right - left) / len(activity.buckets)

    def y(count: int) -> float:
        return bottom - count / top_count * (bottom - top)

    def x(index: int) -> float:  # the middle of the bucket's strip
        return left + (index + 0.5) * slot

    completed = [f"{x(i):.1f},{y(b.completed):.1f}" for i, b in enumerate(activity.buckets)]
    failed = [f"{x(i):.1f},{y(b.failed):.1f}" for i, b in enumerate(activity.buckets)]
    area = [f"{x(0):.1f},{bottom:.1f}", *completed, f"{x(len(completed) - 1):.1f},{bottom:.1f}"]
    window = activity.window
    return Drawing(
        width=WIDTH,
        height=HEIGHT,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        count_ticks=[Tick(y(n), f"{n:,}") for n in range(0, top_count + 1, step)],
        time_ticks=_time_ticks(activity, left, right),
        completed_line=" ".join(completed),
        completed_area=" ".join(area),
        failed_line=" ".join(failed),
        columns=[
            Column(left + i * slot, slot, _bucket_label(b, window.step_seconds))
            for i, b in enumerate(activity.buckets)
        ],
        count_title=f"jobs {window.per}",
        time_title="time (UTC)",
        empty=activity.completed + activity.failed == 0,
        summary=(
            f"Jobs finished {window.per} from {activity.start:%Y-%m-%d %H:%M} to "
            f"{activity.end:%Y-%m-%d %H:%M} UTC: {activity.completed:,} completed, "
            f"{activity.failed:,} failed"
        ),
    )


def _count_scale(peak: int) -> tuple[int, int]:
    """A round step (1, 2 or 5 times a power of ten) and the axis' top, a multiple of it."""
    peak = max(peak, 1)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if math.ceil(peak / step) <= MAX_COUNT_STEPS:
                return step, math.ceil(peak / step) * step
        magnitude *= 10


def _time_ticks(activity: Activity, left: float, right: float) -> list[Tick]:
    """Round UTC clock times inside the window (every 2 min, 10 min or 3 h), placed by time."""
    every = activity.window.tick_seconds
    span_seconds = (activity.end - activity.start).total_seconds()
    first = math.ceil(activity.start.timestamp() / every) * every
    ticks = []
    for stamp in range(first, int(activity.end.timestamp()) + 1, every):
        moment = datetime.fromtimestamp(stamp, UTC)
        at = left + (stamp - activity.start.timestamp()) / span_seconds * (right - left)
        ticks.append(Tick(at, _clock(moment, days=activity.window.seconds >= 86400)))
    return ticks


def _clock(moment: datetime, *, days: bool) -> str:
    # Over a day the axis crosses midnight: name the day there instead of "00:00".
    if days and (moment.hour, moment.minute) == (0, 0):
        return f"{moment:%b} {moment.day}"
    return f"{moment:%H:%M}"


def _bucket_label(bucket: Bucket, step_seconds: int) -> str:
    shape = "%H:%M:%S" if step_seconds < 60 else "%H:%M"
    if step_seconds >= 3 * 3600:  # a week's steps: say which day
        shape = "%b %d %H:%M"
    end = bucket.start + timedelta(seconds=step_seconds)
    p95 = f"; p95 run time {formats.run_time(bucket.p95)}" if bucket.p95 is not None else ""
    return (
        f"{bucket.start:{shape}}–{end:{shape}} UTC: "
        f"{bucket.completed:,} completed, {bucket.failed:,} failed{p95}"
    )
