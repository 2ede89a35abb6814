"""The overview's queue rows with their depth and wait times (issue 22).

Depth is the jobs due and waiting now: read from Redis on bullmq (where the jobs are),
else the board's ``queued`` count. Waits are from due to started, for the jobs that
ended in the last hour: a queue whose jobs wait behind slow ones shows it here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def with_waits(
    counts: Sequence[Mapping[str, Any]],
    waits: Sequence[Mapping[str, Any]],
    depths: Mapping[str, int] | None,
) -> list[dict[str, Any]]:
    """Each queue's counts plus ``depth``, ``startedLastHour``, ``waitP50Seconds`` and ``waitP95Seconds``.

    Args:
        counts: ``BoardStore.queue_counts()``.
        waits: ``BoardStore.queue_waits()``.
        depths: Waiting jobs by queue as the provider counts them, or None (the rows' ``queued``).
    """
    by_queue = {row["queue"]: row for row in waits}
    merged = []
    for row in counts:
        wait = by_queue.get(row["queue"], {})
        depth = row["queued"] if depths is None else depths.get(row["queue"], 0)
        merged.append(
            {
                **row,
                "depth": int(depth),
                "started_last_hour": int(wait.get("started_last_hour", 0)),
                "wait_p50_seconds": _seconds(wait.get("wait_p50_seconds")),
                "wait_p95_seconds": _seconds(wait.get("wait_p95_seconds")),
            }
        )
    return merged


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
