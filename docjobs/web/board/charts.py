"""The overview's charts, drawn as SVG on the server: no script, nothing to load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: The charts cover this long, in steps of this long.
WINDOW_SECONDS = 3600
STEP_SECONDS = 60
WIDTH = 720
HEIGHT = 120


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    completed_height: float
    failed_height: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Bars of jobs finished per minute, and a p95 run-time line, scaled to the box."""

    bars: list[Bar]
    p95_points: str
    peak_jobs: int
    peak_seconds: float
    completed: int
    failed: int
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def failure_rate(self) -> float:
        total = self.completed + self.failed
        return self.failed / total if total else 0.0


def activity_chart(rows: list[dict[str, Any]], now: datetime) -> Chart:
    """Lay out the last hour's ``board_activity`` rows (one per minute that had any, and the total)."""
    totals = next((row for row in rows if row["at"] is None), None)
    rows = [row for row in rows if row["at"] is not None]
    steps = WINDOW_SECONDS // STEP_SECONDS
    start = _floor(now, STEP_SECONDS) - timedelta(seconds=STEP_SECONDS * (steps - 1))
    by_step = {int((row["at"] - start).total_seconds()) // STEP_SECONDS: row for row in rows}
    peak_jobs = max((int(row["completed"]) + int(row["failed"]) for row in rows), default=0)
    peak_seconds = max((float(row["seconds"][1]) for row in rows if row["seconds"]), default=0.0)
    slot = WIDTH / steps
    bars, points = [], []
    for index in range(steps):
        row = by_step.get(index)
        if row is None:
            continue
        completed, failed = int(row["completed"]), int(row["failed"])
        scale = HEIGHT / peak_jobs if peak_jobs else 0
        at = (start + timedelta(seconds=index * STEP_SECONDS)).strftime("%H:%M")
        p95 = float(row["seconds"][1]) if row["seconds"] else 0.0
        bars.append(
            Bar(
                x=index * slot,
                width=max(slot - 1, 1),
                completed_height=completed * scale,
                failed_height=failed * scale,
                label=f"{at}: {completed} completed, {failed} failed, p95 {p95:.3f} s",
            )
        )
        if peak_seconds:
            points.append(f"{index * slot + slot / 2:.1f},{HEIGHT - p95 / peak_seconds * HEIGHT:.1f}")
    percentiles = totals["seconds"] if totals and totals["seconds"] else [None, None, None]
    return Chart(
        bars=bars,
        p95_points=" ".join(points),
        peak_jobs=peak_jobs,
        peak_seconds=peak_seconds,
        completed=int(totals["completed"]) if totals else 0,
        failed=int(totals["failed"]) if totals else 0,
        p50=percentiles[0],
        p95=percentiles[1],
        p99=percentiles[2],
    )


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = moment.timestamp()
    return moment - timedelta(seconds=epoch % seconds)
