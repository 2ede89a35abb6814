"""The overview's activity: jobs finished per bucket over a chosen window, and its chart.

The data is ``board_activity`` over the job history (``background_job``, which every
provider with a database keeps), bucketed in SQL and filled in here so that every
bucket of the window is present, empty ones as zeros: a line drawn through them
reads as "nothing finished then", not as a slope between two busy minutes.

The chart is SVG drawn on the server (:mod:`docjobs.web.board.chart_svg`): no script,
nothing to load, nothing the page's Content-Security-Policy has to allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Window:
    """A span the overview can chart, and how it is cut.

    Attributes:
        name: Its value in ``?window=`` (``1h``).
        label: How the page names it (``1 h``).
        seconds: How far back it reaches.
        step_seconds: One bucket, one point of the chart.
        tick_seconds: The time axis is labelled at multiples of this (UTC clock times).
        per: The bucket as the count axis names it (``per minute``).
    """

    name: str
    label: str
    seconds: int
    step_seconds: int
    tick_seconds: int
    per: str

    @property
    def buckets(self) -> int:
        """How many buckets the window holds."""
        return self.seconds // self.step_seconds


#: The windows the overview offers: about 30 to 60 buckets each, so every one is legible.
WINDOWS: dict[str, Window] = {
    window.name: window
    for window in (
        Window("15m", "15 min", 15 * 60, 30, 2 * 60, "per 30 s"),
        Window("1h", "1 h", 60 * 60, 60, 10 * 60, "per minute"),
        Window("24h", "24 h", 24 * 60 * 60, 30 * 60, 3 * 60 * 60, "per 30 min"),
    )
}
#: The window the overview shows unless asked (and the one the Prometheus gauges cover).
DEFAULT_WINDOW = WINDOWS["1h"]


@dataclass(frozen=True)
class Bucket:
    """Jobs that finished from ``start`` for one step: counts and run-time percentiles (seconds)."""

    start: datetime
    completed: int
    failed: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class Activity:
    """Every bucket of a window, oldest first, with the window's totals."""

    window: Window
    start: datetime
    end: datetime
    buckets: list[Bucket]
    completed: int
    failed: int
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def failure_rate(self) -> float:
        """Failed jobs among finished ones, 0 when none finished."""
        total = self.completed + self.failed
        return self.failed / total if total else 0.0

    def as_json(self) -> dict[str, Any]:
        """The activity as the JSON API answers it (every bucket, empty ones too)."""
        return {
            "window": self.window.name,
            "windowSeconds": self.window.seconds,
            "stepSeconds": self.window.step_seconds,
            "from": self.start,
            "until": self.end,
            "completed": self.completed,
            "failed": self.failed,
            "failureRate": self.failure_rate,
            "seconds": {"p50": self.p50, "p95": self.p95, "p99": self.p99},
            "steps": [
                {
                    "at": bucket.start,
                    "completed": bucket.completed,
                    "failed": bucket.failed,
                    "seconds": {"p50": bucket.p50, "p95": bucket.p95, "p99": bucket.p99},
                }
                for bucket in self.buckets
            ],
        }


def span(window: Window, now: datetime) -> tuple[datetime, datetime]:
    """The window ending with the bucket that holds ``now``: ``(start, end)``, bucket-aligned (UTC)."""
    end = _floor(now, window.step_seconds) + timedelta(seconds=window.step_seconds)
    return end - timedelta(seconds=window.seconds), end


def activity(rows: list[dict[str, Any]], window: Window, start: datetime) -> Activity:
    """Every bucket of the window from ``board_activity``'s rows (the busy buckets and the total).

    Args:
        rows: ``at`` (a bucket's start, ``None`` for the total), ``completed``, ``failed``
            and ``seconds`` (p50, p95, p99 or ``None``).
        window: The window the rows cover.
        start: Its first bucket's start, as :func:`span` gave it.
    """
    total = next((row for row in rows if row["at"] is None), None)
    by_start = {row["at"]: row for row in rows if row["at"] is not None}
    step = timedelta(seconds=window.step_seconds)
    buckets = []
    for index in range(window.buckets):
        at = start + index * step
        row = by_start.get(at)
        buckets.append(_bucket(at, row) if row else Bucket(at, 0, 0, None, None, None))
    whole = _bucket(start, total) if total else Bucket(start, 0, 0, None, None, None)
    return Activity(
        window=window,
        start=start,
        end=start + window.buckets * step,
        buckets=buckets,
        completed=whole.completed,
        failed=whole.failed,
        p50=whole.p50,
        p95=whole.p95,
        p99=whole.p99,
    )


def _bucket(at: datetime, row: dict[str, Any]) -> Bucket:
    p50, p95, p99 = (float(value) for value in row["seconds"]) if row["seconds"] else (None, None, None)
    return Bucket(at, int(row["completed"]), int(row["failed"]), p50, p95, p99)


def _floor(moment: datetime, seconds: int) -> datetime:
    # Whole seconds: float remainders would leave bucket starts a microsecond off SQL's.
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)
