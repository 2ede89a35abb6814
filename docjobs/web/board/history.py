"""The history page: throughput, failures, wait and run times per job type over 24 h or 7 days.

It reads the rollups (:mod:`docjobs.db.rollups`), not ``background_job``: retention
deletes finished rows, and the rollups keep their counts in a few rows per 5 minutes
and job type. Two bounded reads per view (per job type, and per chart step, both
over the primary key's range of buckets), shared by every viewer for
:data:`CACHE_SECONDS`: the rollups move every 5 minutes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docjobs.db.rollups import RollupStore, percentile_seconds
from docjobs.web.board import chart_svg, charts
from docjobs.web.board.forms import BadFilter

#: The spans the history page offers: 48 and 56 chart steps.
WINDOWS: dict[str, charts.Window] = {
    window.name: window
    for window in (
        charts.Window("24h", "24 h", 24 * 3600, 30 * 60, 3 * 3600, "per 30 min"),
        charts.Window("7d", "7 days", 7 * 24 * 3600, 3 * 3600, 24 * 3600, "per 3 h"),
    )
}
DEFAULT_WINDOW = WINDOWS["24h"]
#: How long one view of a window is shared between viewers.
CACHE_SECONDS = 30.0


def window_named(text: str) -> charts.Window:
    """The window ``?window=`` names (``""``: 24 h).

    Raises:
        BadFilter: A name that is not one of ``WINDOWS``.
    """
    if not text:
        return DEFAULT_WINDOW
    window = WINDOWS.get(text)
    if window is None:
        raise BadFilter(f"window must be one of {', '.join(WINDOWS)}, not {text[:40]!r}")
    return window


@dataclass(frozen=True)
class JobTypeHistory:
    """One job type's figures over a window (times in seconds; ``None`` when no job started)."""

    actor: str
    completed: int
    failed: int
    cancelled: int
    retried: int
    wait_avg: float | None
    wait_p95: float | None
    wait_max: float | None
    run_avg: float | None
    run_p95: float | None
    run_max: float | None

    @property
    def failure_rate(self) -> float:
        """Failed jobs among those completed or failed; 0 when none."""
        total = self.completed + self.failed
        return self.failed / total if total else 0.0

    def as_json(self, hours: float) -> dict[str, Any]:
        """The row as the JSON API answers it; ``perHour``: completed and failed over ``hours``."""
        return {
            "job": self.actor,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "retried": self.retried,
            "failureRate": self.failure_rate,
            "perHour": (self.completed + self.failed) / hours,
            "waitSeconds": {"avg": self.wait_avg, "p95": self.wait_p95, "max": self.wait_max},
            "runSeconds": {"avg": self.run_avg, "p95": self.run_p95, "max": self.run_max},
        }


class History:
    """The history views over the rollups, cached per window.

    Args:
        store: The rollups.
    """

    def __init__(self, store: RollupStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def view(self, window: charts.Window) -> dict[str, Any]:
        """``history`` (the JSON answer) and ``chart`` (its drawing) for ``window``, ending now."""
        with self._lock:
            cached = self._cache.get(window.name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        view = self.compute(window, datetime.now(UTC))
        with self._lock:
            self._cache[window.name] = (time.monotonic(), view)
        return view

    def compute(self, window: charts.Window, now: datetime) -> dict[str, Any]:
        """The history of the ``window`` that ends with the chart step holding ``now``."""
        start, end = charts.span(window, now)
        types = [_job_type(row) for row in self.store.by_actor(start, end)]
        steps = self.store.series(start, end, window.step_seconds)
        activity = charts.activity(_activity_rows(steps), window, start)
        state = self.store.state()
        hours = window.seconds / 3600
        waits = {row["at"]: row for row in steps}
        history = {
            "window": window.name,
            "windowSeconds": window.seconds,
            "stepSeconds": window.step_seconds,
            "from": start,
            # The last chart step runs past now; the page says up to when it shows jobs.
            "until": min(end, now),
            # Jobs that finished later are not counted yet (the overview shows them).
            "rolledUntil": state["rolled_until"],
            "completed": activity.completed,
            "failed": activity.failed,
            "failureRate": activity.failure_rate,
            "jobTypes": [job_type.as_json(hours) for job_type in types],
            "steps": [
                {
                    "at": bucket.start,
                    "completed": bucket.completed,
                    "failed": bucket.failed,
                    "waitSecondsAvg": _average(waits.get(bucket.start), "wait_ms_sum", "wait_count"),
                }
                for bucket in activity.buckets
            ],
        }
        return {"history": history, "chart": chart_svg.draw(activity)}


def _job_type(row: dict[str, Any]) -> JobTypeHistory:
    return JobTypeHistory(
        actor=row["actor"],
        completed=int(row["completed"]),
        failed=int(row["failed"]),
        cancelled=int(row["cancelled"]),
        retried=int(row["retried"]),
        wait_avg=_average(row, "wait_ms_sum", "wait_count"),
        wait_p95=percentile_seconds(row["wait_histogram"], int(row["wait_ms_max"]), 0.95),
        wait_max=int(row["wait_ms_max"]) / 1000 if row["wait_count"] else None,
        run_avg=_average(row, "run_ms_sum", "run_count"),
        run_p95=percentile_seconds(row["run_histogram"], int(row["run_ms_max"]), 0.95),
        run_max=int(row["run_ms_max"]) / 1000 if row["run_count"] else None,
    )


def _average(row: dict[str, Any] | None, total: str, count: str) -> float | None:
    if row is None or not row[count]:
        return None
    return int(row[total]) / int(row[count]) / 1000


def _activity_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rollup's steps as ``charts.activity`` reads ``board_activity``'s rows (no percentiles)."""
    rows: list[dict[str, Any]] = [
        {"at": step["at"], "completed": step["completed"], "failed": step["failed"], "seconds": None}
        for step in steps
    ]
    total = {
        "at": None,
        "completed": sum(int(step["completed"]) for step in steps),
        "failed": sum(int(step["failed"]) for step in steps),
        "seconds": None,
    }
    return [total, *rows]
